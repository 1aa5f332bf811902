// The API reference page (docs.html): starts the vendored Swagger UI on the
// document the page names. A file, not an inline script: the console's
// Content-Security-Policy allows scripts from this origin only.
"use strict";

const root = document.getElementById("api-reference");

window.SwaggerUIBundle({
  domNode: root,
  url: root.dataset.specUrl,
  // Never ask validator.swagger.io for a badge (another origin; the policy
  // refuses its image anyway).
  validatorUrl: null,
  // Only this document: no ?url= or ?configUrl= from the address bar.
  queryConfigEnabled: false,
  deepLinking: true,
  filter: true,
  tagsSorter: "alpha",
  displayRequestDuration: true,
  persistAuthorization: false,
  defaultModelsExpandDepth: 0,
});
