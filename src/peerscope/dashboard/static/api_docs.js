// Starts Swagger UI on /docs. A file of its own, not an inline script, so the page's
// Content-Security-Policy can refuse inline code.
/* global SwaggerUIBundle */
SwaggerUIBundle({
  // Relative to the page, so the docs still find it when the app is mounted under a prefix.
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  // FastAPI's own /docs settings, so the page looks and behaves as FastAPI users expect.
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  // The online validator is a third-party service: never send it the document.
  validatorUrl: null,
});
