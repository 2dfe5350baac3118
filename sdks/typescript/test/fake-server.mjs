// A tiny local HTTP server whose answers a test scripts, recording every request: for retries,
// idempotency keys and event-stream reconnects.

import { createServer } from "node:http";

export async function fakeServer(answer) {
  const requests = [];
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const recorded = { method: request.method, path: request.url, headers: request.headers, body: Buffer.concat(chunks).toString() };
      requests.push(recorded);
      const [status, headers, body] = answer(recorded, requests.length);
      response.writeHead(status, { ...headers, "content-length": Buffer.byteLength(body), connection: "close" });
      response.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}
