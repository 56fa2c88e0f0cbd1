// A Node `ws` client with perMessageDeflate, for deflate.py: subscribes, prints the negotiated
// extensions and then every `update` as one JSON line, exits after COUNT updates.
// Usage: node ws_deflate_client.mjs WS_MODULE_DIR URL CHANNEL ORG COUNT
import {createRequire} from "node:module";

const [wsDir, url, channel, org, count] = process.argv.slice(2);
const WebSocket = createRequire(wsDir + "/")("ws");
const ws = new WebSocket(url, {perMessageDeflate: true});
let got = 0;
const timer = setTimeout(() => { console.error("timeout"); process.exit(2); }, 20000);
ws.on("open", () => {
  console.log(JSON.stringify({type: "extensions", value: ws.extensions}));
  ws.send(JSON.stringify({type: "subscribe", channel, scope: {org}}));
});
ws.on("message", (data) => {
  const m = JSON.parse(data.toString());
  if (m.type === "subscribed") console.log(JSON.stringify(m));
  if (m.type !== "update") return;
  console.log(JSON.stringify(m));
  if (++got === Number(count)) { clearTimeout(timer); ws.close(1000); }
});
ws.on("close", (code) => { console.log(JSON.stringify({type: "closed", code})); process.exit(0); });
ws.on("error", (e) => { console.error(String(e)); process.exit(1); });
