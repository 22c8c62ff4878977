import { describe, expect, it } from 'vitest';
import { listensOnAllAddresses } from './ssh-port.ts';

const HEADER = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';

function table(...rows: string[]): string {
  return [HEADER, ...rows.map((row, i) => `   ${i}: ${row} 00000000:00000000 00:00000000 00000000     0        0 5278${i} 1`)].join('\n');
}

describe('finding a server that holds port 22 on every address', () => {
  it('finds one listening on 0.0.0.0:22', () => {
    expect(listensOnAllAddresses(table('00000000:0016 00000000:0000 0A'), 22)).toBe(true);
  });

  it('finds one listening on [::]:22', () => {
    expect(listensOnAllAddresses(table('00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A'), 22)).toBe(true);
  });

  it('ignores test hosts listening on their own loopback addresses', () => {
    expect(listensOnAllAddresses(table('0501007F:0016 00000000:0000 0A', '0101007F:0016 00000000:0000 0A'), 22)).toBe(false);
  });

  it('ignores other ports and connections that are not listening', () => {
    expect(listensOnAllAddresses(table('00000000:07E8 00000000:0000 0A', '00000000:0016 0100007F:A2C4 01'), 22)).toBe(false);
  });
});
