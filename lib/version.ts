// The version recorded in plan metadata. Kept in step with package.json by a test.
export const UPKEEP_VERSION = '0.1.0';
