// @apollo/gateway in front of govshare and other subgraphs, forwarding each caller's own headers to every
// subgraph: govshare decides and records every access under the caller's key, purpose and operator.
//
//   SUPERGRAPH_FILE=supergraph.graphql PORT=4000 node gateway.js          (recommended: composed offline)
//   SUBGRAPHS='[{"name":"govshare","url":"http://127.0.0.1:8000/graphql"},...]' \
//     GATEWAY_SCHEMA_KEY=<a key> PORT=4000 node gateway.js               (IntrospectAndCompose at start-up)
//
// Nothing leaves for Apollo's hosts: no usage or schema reporting, no landing page, and the gateway's own
// telemetry (a data-collection exporter @apollo/gateway starts unless APOLLO_TELEMETRY_DISABLED) is off.
import { readFileSync } from 'node:fs';
import { GraphQLError } from 'graphql';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import {
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from '@apollo/gateway';

process.env.APOLLO_TELEMETRY_DISABLED = 'true'; // read when the gateway is constructed, below
for (const name of ['APOLLO_KEY', 'APOLLO_GRAPH_REF', 'APOLLO_SCHEMA_REPORTING']) delete process.env[name];

// The caller's headers every subgraph request carries: the application key, the purpose (履职事项), the acting
// officer and the language of messages. Never the gateway's own key for a caller's request.
const FORWARDED = ['authorization', 'x-purpose', 'x-operator', 'accept-language'];

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context, kind }) {
    const incoming = context?.headers;
    if (incoming) {
      for (const name of FORWARDED) {
        const value = incoming[name];
        if (value !== undefined) request.http.headers.set(name, Array.isArray(value) ? value.join(', ') : value);
      }
      return;
    }
    // No caller: the gateway loading the subgraphs' SDL (IntrospectAndCompose) or checking their health. In
    // production govshare's `_service { sdl }` answers this key's department view.
    // govshare requires an operator on every request where operator_required is on (production): the gateway names
    // itself (GATEWAY_SCHEMA_OPERATOR); loading the SDL reads no data and is not an access.
    if ((kind === 'loading schema' || kind === 'health check') && process.env.GATEWAY_SCHEMA_KEY) {
      request.http.headers.set('authorization', `Bearer ${process.env.GATEWAY_SCHEMA_KEY}`);
      request.http.headers.set('x-operator', process.env.GATEWAY_SCHEMA_OPERATOR || 'apollo-gateway');
    }
  }

  // A subgraph refusing the whole request (govshare: 401 key, 403 DOCUMENT_NOT_TRUSTED, 429 RATE_LIMITED, ...)
  // answers a GraphQL error with a stable code and a message in the caller's language: pass that on, instead of
  // Apollo's "401: Unauthorized" (403 as FORBIDDEN, 429 with no code) carrying the subgraph's internal URL.
  async errorFromResponse(response) {
    const error = await super.errorFromResponse(response);
    const own = error.extensions?.response?.body?.errors?.[0];
    if (typeof own?.message !== 'string' || typeof own?.extensions?.code !== 'string') return error;
    return new GraphQLError(own.message, { extensions: { ...own.extensions, serviceName: this.name } });
  }
}

const buildService = ({ name, url }) => Object.assign(new ForwardingDataSource({ url }), { name });
const gateway = process.env.SUPERGRAPH_FILE
  ? new ApolloGateway({ supergraphSdl: readFileSync(process.env.SUPERGRAPH_FILE, 'utf8'), buildService })
  : new ApolloGateway({
      supergraphSdl: new IntrospectAndCompose({ subgraphs: JSON.parse(process.env.SUBGRAPHS) }),
      buildService,
    });

const server = new ApolloServer({
  gateway,
  introspection: process.env.GATEWAY_INTROSPECTION === 'true', // the supergraph names every resource
  includeStacktraceInErrorResponses: false, // whatever NODE_ENV says: no stack trace (file paths) to callers
  plugins: [
    ApolloServerPluginLandingPageDisabled(),
    ApolloServerPluginSchemaReportingDisabled(),
    ApolloServerPluginUsageReportingDisabled(),
  ],
});
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.PORT) },
  context: async ({ req }) => ({ headers: req.headers }),
});
console.log(`gateway ready at ${url}`);
