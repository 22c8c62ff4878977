// Terraform reads every string of a .tf.json file as a template: "${...}" is an expression and
// "%{...}" a directive, evaluated on the machine that runs the engine (file(), var.hcloud_token).
// A value from the policy is text, never an expression, so it enters the stack only through here.

/** `text` as a Terraform string that evaluates to exactly `text`: "${" -> "$${", "%{" -> "%%{". */
export function terraformLiteral(text: string): string {
  return text.replace(/([$%])\{/g, '$1$1{');
}

/**
 * A copy of policy data with every string (keys included) made a Terraform literal. The stack is
 * built from this copy only, so no value the policy wrote can reach it unescaped; the expressions
 * the stack needs (references between resources) are cdktf tokens added afterwards.
 */
export function terraformLiterals<T>(value: T): T {
  if (typeof value === 'string') return terraformLiteral(value) as T;
  if (Array.isArray(value)) return value.map((item) => terraformLiterals(item)) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [terraformLiteral(key), terraformLiterals(item)])) as T;
  }
  return value;
}
