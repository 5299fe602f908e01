// Compose a supergraph offline from subgraph SDL files (@apollo/composition), for gateway.js's SUPERGRAPH_FILE.
//   node compose.js govshare=http://127.0.0.1:8000/graphql=govshare.graphql visits=http://127.0.0.1:4002/=visits.graphql
// govshare's SDL: `govshare schema sdl --federation -o govshare.graphql`. Prints the supergraph SDL; exits 1 with
// every composition error on stderr.
import { readFileSync } from 'node:fs';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';

const services = process.argv.slice(2).map((arg) => {
  const [name, ...rest] = arg.split('=');
  const file = rest.pop();
  return { name, url: rest.join('='), typeDefs: parse(readFileSync(file, 'utf8')) };
});
const result = composeServices(services);
if (result.errors) {
  for (const error of result.errors) console.error(error.message);
  process.exit(1);
}
for (const hint of result.hints ?? []) console.error(`hint: ${hint.definition.code}: ${hint.message}`);
process.stdout.write(result.supergraphSdl);
