// A local TLS origin playing an API that needs a key: it answers with what it received
// ({host, path, receivedKey}) and records it, so a test sees what reached the upstream and what
// came back into the sandbox. Binds address:443 (root) with the certificate sdks/test.sh made.

import { readFileSync } from "node:fs";
import { createServer } from "node:https";

export async function startOrigin(address, certPath, keyPath) {
  const received = [];
  const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, (request, response) => {
    request.resume();
    request.on("end", () => {
      const host = (request.headers.host ?? "").split(":")[0];
      const key = request.headers["x-api-key"] ?? "";
      received.push([host, key]);
      const body = JSON.stringify({ host, path: request.url, receivedKey: key });
      response.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      response.end(body);
    });
  });
  await new Promise((resolve, reject) => server.listen(443, address, resolve).once("error", reject));
  return {
    keysFor: (host) => received.filter(([seen]) => seen === host).map(([, key]) => key),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
