// The reference gateway for parity tests: @apollo/gateway over a static supergraph SDL.
// usage: node apollo-gateway.mjs --supergraph <file> --port <n>
// Prints "ready <url>" on stdout once it listens on 127.0.0.1:<port>.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

const FORWARDED_HEADERS = ["authorization"];

const { values } = parseArgs({
  options: {
    supergraph: { type: "string" },
    port: { type: "string", default: "4000" },
  },
});
if (!values.supergraph) {
  process.stderr.write("usage: node apollo-gateway.mjs --supergraph <file> --port <n>\n");
  process.exit(2);
}

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    for (const name of FORWARDED_HEADERS) {
      const value = context?.headers?.[name];
      if (value !== undefined) {
        request.http.headers.set(name, value);
      }
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: readFileSync(values.supergraph, "utf8"),
  buildService: ({ url }) => new ForwardingDataSource({ url }),
});
const server = new ApolloServer({
  gateway,
  includeStacktraceInErrorResponses: false,
  introspection: true,
});
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: Number(values.port) },
  context: async ({ req }) => ({ headers: req.headers }),
});
process.stdout.write(`ready ${url}\n`);

const stop = async () => {
  await server.stop();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
