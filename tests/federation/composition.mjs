// Composition of Patron's subgraph with the two Node subgraphs (@apollo/composition, the
// library inside @apollo/gateway and `rover supergraph compose`).
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { APPOINTMENTS_SDL, REVIEWS_SDL } from './subgraphs.mjs';

// `urls`: where the router reaches each subgraph (placeholders when only composing).
export function compose(patronSdl, urls = {}) {
  const subgraphs = [
    { name: 'patron', sdl: patronSdl },
    { name: 'appointments', sdl: APPOINTMENTS_SDL },
    { name: 'reviews', sdl: REVIEWS_SDL },
  ].map(({ name, sdl }) => ({
    name,
    url: urls[name] ?? `http://${name}.invalid/graphql`,
    typeDefs: parse(sdl),
  }));
  const result = composeServices(subgraphs);
  return {
    errors: (result.errors ?? []).map((e) => ({ code: e.extensions?.code ?? null, message: e.message })),
    hints: (result.hints ?? []).map((h) => ({ code: h.definition.code, message: h.message })),
    supergraphSdl: result.supergraphSdl ?? null,
  };
}
