// Validates an AsyncAPI document with the reference parser: node validate.mjs <asyncapi.yaml>
// Prints each diagnostic as a JSON line, then a summary line {"messages": {name: {address,
// payloadProperties}}} of what the parser resolved; exits 1 when any diagnostic is an error.
import { resolve } from "node:path";
import { Parser, fromFile } from "@asyncapi/parser";

const path = resolve(process.argv[2] ?? "docs/events/asyncapi.yaml");
const { document, diagnostics } = await fromFile(new Parser(), path).parse();
for (const d of diagnostics) {
  console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
}
if (!document || diagnostics.some((d) => d.severity === 0)) {
  process.exit(1);
}
const messages = {};
for (const channel of document.allChannels()) {
  for (const message of channel.messages()) {
    messages[message.name()] = {
      address: channel.address(),
      payloadProperties: Object.keys(message.payload()?.properties() ?? {}),
    };
  }
}
console.log(JSON.stringify({ version: document.version(), messages }));
