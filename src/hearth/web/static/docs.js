// Starts Swagger UI on /docs. A file rather than an inline script: the page's
// Content-Security-Policy allows scripts from Hearth's own files only.
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  var csrfToken = root.dataset.csrfToken;
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // No badge from swagger.io's online validator: nothing leaves the LAN.
    validatorUrl: null,
    // "Try it out" from the operator's session: writes need the session's CSRF token.
    requestInterceptor: function (request) {
      if (new URL(request.url, window.location.href).origin === window.location.origin) {
        request.headers["X-CSRF-Token"] = csrfToken;
      }
      return request;
    },
  });
})();
