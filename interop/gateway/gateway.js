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
}

// A request govshare refuses as a whole (400 HEADER_INVALID or OPERATOR_REQUIRED, 429 RATE_LIMITED, 503
// POLICY_UNCONFIRMED...) answers without data: the gateway's default error says only "400: Bad Request" with the code
// INTERNAL_SERVER_ERROR; the client gets govshare's own message and code instead (the HTTP answer stays beside them).
class GovshareDataSource extends ForwardingDataSource {
  async errorFromResponse(response) {
    const error = await super.errorFromResponse(response);
    const refusal = error.extensions?.response?.body?.errors?.[0];
    if (typeof refusal?.extensions?.code !== 'string') return error;
    return new GraphQLError(refusal.message, { extensions: { ...error.extensions, ...refusal.extensions } });
  }
}

const buildService = ({ url }) => new GovshareDataSource({ url });
const gateway = process.env.SUPERGRAPH_FILE
  ? new ApolloGateway({ supergraphSdl: readFileSync(process.env.SUPERGRAPH_FILE, 'utf8'), buildService })
  : new ApolloGateway({
      supergraphSdl: new IntrospectAndCompose({ subgraphs: JSON.parse(process.env.SUBGRAPHS) }),
      buildService,
    });

const server = new ApolloServer({
  gateway,
  introspection: process.env.GATEWAY_INTROSPECTION === 'true', // the supergraph names every resource
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
