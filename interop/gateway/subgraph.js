// A small subgraph extending govshare's Person by its key (idNumber), from an in-memory list of visits.
//   VISITS_FILE=visits.json PORT=4002 node subgraph.js
// visits.json: [{"id", "hall", "date", "matter", "idNumber"}, ...]
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import {
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginSchemaReportingDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const here = new URL('.', import.meta.url);
const visits = JSON.parse(readFileSync(process.env.VISITS_FILE, 'utf8'));
const typeDefs = parse(readFileSync(new URL('visits.graphql', here), 'utf8'));
const asVisit = (v) => ({ ...v, visitor: { __typename: 'Person', idNumber: v.idNumber } });

const resolvers = {
  Query: {
    serviceHallVisits: (_, { hall }) => visits.filter((v) => hall == null || v.hall === hall).map(asVisit),
  },
  Person: {
    // A reference from govshare (or the gateway): only its key is used
    __resolveReference: ({ idNumber }) => ({ idNumber }),
    serviceHallVisits: ({ idNumber }) => visits.filter((v) => v.idNumber === idNumber).map(asVisit),
  },
};

const server = new ApolloServer({
  schema: buildSubgraphSchema([{ typeDefs, resolvers }]),
  plugins: [
    ApolloServerPluginLandingPageDisabled(),
    ApolloServerPluginSchemaReportingDisabled(),
    ApolloServerPluginUsageReportingDisabled(),
  ],
});
const { url } = await startStandaloneServer(server, {
  listen: { host: '127.0.0.1', port: Number(process.env.PORT) },
});
console.log(`visits subgraph ready at ${url}`);
