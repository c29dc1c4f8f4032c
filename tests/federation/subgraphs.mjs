// Two tiny subgraphs a retailer might run beside Patron, each referencing Patron's Member
// entity by one of its keys:
// - appointments: store appointments booked on the storefront, which knows the commerce
//   customer id. Member @key(fields: "externalIds { commerceCustomerId }"), resolvable:
//   it adds `Member.appointments`.
// - reviews: product reviews whose author is Patron's member id. Member @key(fields: "id",
//   resolvable: false): it only points at members.
// The data comes from a fixtures file written by the test (reviews need Patron's ids).
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.0", import: ["@key"])';

export const APPOINTMENTS_SDL = `${LINK}

type Query {
  "Every appointment, oldest first."
  appointments: [Appointment!]!
  appointment(id: ID!): Appointment
}

"A styling appointment booked in a store."
type Appointment {
  id: ID!
  store: String!
  service: String!
  startsAt: String!
  "The loyalty member who booked it (Patron), by the commerce customer id the storefront knows."
  member: Member
}

type Member @key(fields: "externalIds { commerceCustomerId }") {
  externalIds: ExternalIds!
  "The member's appointments, oldest first."
  appointments: [Appointment!]!
}

type ExternalIds {
  commerceCustomerId: String!
}
`;

export const REVIEWS_SDL = `${LINK}

type Query {
  "Every review, oldest first."
  reviews: [Review!]!
}

type Review {
  id: ID!
  product: String!
  rating: Int!
  title: String!
  "The loyalty member who wrote it (Patron), by its member id."
  author: Member
}

type Member @key(fields: "id", resolvable: false) {
  id: ID!
}
`;

function appointmentsResolvers(appointments) {
  const member = (a) => ({ __typename: 'Member', externalIds: { commerceCustomerId: a.commerceCustomerId } });
  const view = (a) => ({ ...a, member: member(a) });
  return {
    Query: {
      appointments: () => appointments.map(view),
      appointment: (_, { id }) => {
        const found = appointments.find((a) => a.id === id);
        return found ? view(found) : null;
      },
    },
    Member: {
      __resolveReference: (ref) => ref,
      appointments: (ref) =>
        appointments
          .filter((a) => a.commerceCustomerId === ref.externalIds.commerceCustomerId)
          .map(view),
    },
  };
}

function reviewsResolvers(reviews) {
  return {
    Query: {
      reviews: () => reviews.map((r) => ({ ...r, author: { __typename: 'Member', id: r.authorId } })),
    },
  };
}

export function appointmentsSchema(fixtures) {
  return buildSubgraphSchema([{ typeDefs: parse(APPOINTMENTS_SDL), resolvers: appointmentsResolvers(fixtures.appointments) }]);
}

export function reviewsSchema(fixtures) {
  return buildSubgraphSchema([{ typeDefs: parse(REVIEWS_SDL), resolvers: reviewsResolvers(fixtures.reviews) }]);
}
