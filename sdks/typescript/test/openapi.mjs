// Checks what the SDK sent and parsed against the OpenAPI document the live server serves:
// request bodies against their operation's request schema, JSON answers against the schema of
// their status — types, enums, required fields, and no undocumented field (objects are closed).

export function resolve(document, schema) {
  while (schema && schema.$ref) {
    schema = schema.$ref.replace(/^#\//, "").split("/").reduce((node, part) => node[part], document);
  }
  return schema;
}

function kind(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

export function check(document, schema, value, at, problems) {
  schema = resolve(document, schema);
  const allowed = typeof schema.type === "string" ? [schema.type] : schema.type ?? [];
  const actual = kind(value);
  if (allowed.length && !allowed.includes(actual) && !(actual === "integer" && allowed.includes("number"))) {
    problems.push(`${at}: ${actual} where the document says ${allowed}`);
    return;
  }
  if (schema.enum && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in ${schema.enum}`);
  if (schema.anyOf && actual === "object") {
    if (!schema.anyOf.some((option) => (option.required ?? []).every((name) => name in value))) {
      problems.push(`${at}: none of anyOf holds`);
    }
  }
  if (actual === "object") {
    for (const name of schema.required ?? []) if (!(name in value)) problems.push(`${at}: required field ${name} is missing`);
    for (const [name, item] of Object.entries(value)) {
      if (schema.properties && name in schema.properties) check(document, schema.properties[name], item, `${at}.${name}`, problems);
      else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
        check(document, schema.additionalProperties, item, `${at}.${name}`, problems);
      } else problems.push(`${at}.${name}: field not documented`);
    }
  }
  if (actual === "array" && schema.items) value.forEach((item, index) => check(document, schema.items, item, `${at}[${index}]`, problems));
}

export function operation(document, method, path) {
  const segments = path.split("?")[0].split("/");
  let best;
  for (const [template, item] of Object.entries(document.paths)) {
    const parts = template.split("/");
    if (parts.length !== segments.length || !item[method.toLowerCase()]) continue;
    if (!parts.every((part, index) => part === segments[index] || part.startsWith("{"))) continue;
    const literal = parts.filter((part, index) => part === segments[index]).length;
    if (!best || literal > best[0]) best = [literal, item[method.toLowerCase()]];
  }
  return best?.[1];
}

export function checkExchange(document, exchange) {
  const what = `${exchange.method} ${exchange.path}`;
  const op = operation(document, exchange.method, exchange.path);
  if (!op) return [`${what}: not a documented operation`];
  const problems = [];
  if (exchange.request !== undefined) {
    if (!op.requestBody) problems.push(`${what}: sent a body the operation does not document`);
    else check(document, op.requestBody.content["application/json"].schema, exchange.request, `${what} request`, problems);
  }
  let response = op.responses[String(exchange.status)];
  if (!response) return [...problems, `${what}: status ${exchange.status} is not documented`];
  response = resolve(document, response);
  if (exchange.response !== undefined) {
    const schema = response.content?.["application/json"]?.schema;
    if (!schema) problems.push(`${what} ${exchange.status}: a JSON answer the document does not describe`);
    else check(document, schema, exchange.response, `${what} ${exchange.status}`, problems);
  }
  const documented = Object.keys(response.headers ?? {}).map((name) => name.toLowerCase());
  for (const header of exchange.headers) {
    if (!documented.includes(header)) problems.push(`${what} ${exchange.status}: header ${header} not documented`);
  }
  return problems;
}

/** A `fetch` that records every exchange (JSON answers are cloned, streams left alone). */
export function recordingFetch(exchanges) {
  return async (input, init = {}) => {
    const response = await fetch(input, init);
    const url = new URL(String(input));
    const exchange = {
      method: init.method ?? "GET",
      path: url.pathname,
      status: response.status,
      request: typeof init.body === "string" ? JSON.parse(init.body) : undefined,
      response: undefined,
      headers: ["x-next-cursor", "link"].filter((name) => response.headers.has(name)),
    };
    const type = response.headers.get("content-type") ?? "";
    if (type.startsWith("application/json")) {
      const text = await response.clone().text();
      if (text) exchange.response = JSON.parse(text);
    }
    exchanges.push(exchange);
    return response;
  };
}
