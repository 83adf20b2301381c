// Composes the subgraph SDL files given as arguments into a supergraph with Apollo's own composition
// (`@apollo/composition`, what Rover and GraphOS run). Prints the supergraph SDL on success; prints every
// composition error and exits 1 otherwise. Each subgraph is named after its file.
//
//   node compose.mjs ../../../graphql/schema.graphql orders.graphql crm.graphql
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node compose.mjs SUBGRAPH.graphql [SUBGRAPH.graphql ...]");
  process.exit(2);
}

const services = files.map((file) => {
  const name = basename(file, extname(file)).replace(/[^A-Za-z0-9_]/g, "_");
  return { name, url: `http://${name}.invalid/graphql`, typeDefs: parse(readFileSync(file, "utf8")) };
});

const result = composeServices(services);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) {
    const code = error.extensions?.code ?? "UNKNOWN";
    console.error(`${code}: ${error.message}`);
  }
  process.exit(1);
}
for (const hint of result.hints ?? []) {
  console.error(`hint ${hint.definition?.code ?? ""}: ${hint.message}`);
}
process.stdout.write(result.supergraphSdl);
