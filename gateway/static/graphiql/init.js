/*
 * Patron's GraphiQL page script. Loaded with <script src defer> after React, ReactDOM,
 * GraphiQL and the explorer plugin (all vendored next to this file), so the page needs no
 * inline script and works under `script-src 'self'`. Styles are set through the CSSOM,
 * which `style-src 'self'` does not restrict.
 *
 * The root element carries the endpoints:
 *   <div id="graphiql" data-endpoint="/graphql" data-subscription-endpoint="/graphql">
 * A relative subscription endpoint is resolved against the page and turned into ws(s)://.
 */
(function () {
  "use strict";

  var root = document.getElementById("graphiql");
  if (!root) {
    return;
  }

  function absoluteHttpUrl(value) {
    return new URL(value, window.location.href).toString();
  }

  function websocketUrl(value) {
    var url = new URL(value, window.location.href);
    if (url.protocol === "https:") {
      url.protocol = "wss:";
    } else if (url.protocol === "http:") {
      url.protocol = "ws:";
    }
    return url.toString();
  }

  var endpoint = root.getAttribute("data-endpoint") || "/graphql";
  var subscriptionEndpoint = root.getAttribute("data-subscription-endpoint") || endpoint;

  // The page never scrolls: GraphiQL fills the viewport. Hiding the overflow on <html> (not
  // <body>) keeps the viewport free of scroll bars, so the scroll-lock <style> that GraphiQL's
  // dialogs inject measures a 0px gap and its text always matches the sha256 hash allowed by
  // the page's style-src (gateway/graphiql.py, SCROLL_LOCK_CSS).
  document.documentElement.style.height = "100%";
  document.documentElement.style.overflow = "hidden";
  document.body.style.height = "100%";
  document.body.style.margin = "0";
  document.body.style.padding = "0";
  root.style.height = "100%";
  root.textContent = "";

  var fetcher = GraphiQL.createFetcher({
    url: absoluteHttpUrl(endpoint),
    subscriptionUrl: websocketUrl(subscriptionEndpoint),
  });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      visiblePlugin: explorer,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: true,
    }),
  );
})();
