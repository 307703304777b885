// Starts rasa-webchat (served from our own server, no CDN) with the settings the page
// server wrote into #webchat-config, and makes its reply buttons keyboard-friendly.
(function () {
  var config = JSON.parse(document.getElementById("webchat-config").textContent);
  window.WebChat.default({
    selector: "#webchat",
    initPayload: "/greet",
    socketUrl: config.socketUrl,
    socketPath: "/socket.io/",
    title: config.title,
    subtitle: "General information, not a diagnosis",
    inputTextFieldHint: "Ask about your back or glutes…",
    params: { storage: "local" },  // keeps the conversation across reloads
    showMessageDate: false,
    customMessageDelay: function () { return 0; }
  }, null);

  // Quick replies are plain elements: give them a role, a tab stop and Enter/Space.
  function enhance(root) {
    root.querySelectorAll(".rw-reply").forEach(function (reply) {
      if (reply.getAttribute("role") === "button") return;
      reply.setAttribute("role", "button");
      reply.setAttribute("tabindex", "0");
      reply.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); reply.click(); }
      });
    });
    var input = root.querySelector(".rw-new-message");
    if (input && !input.getAttribute("aria-label")) input.setAttribute("aria-label", "Your message");
    var send = root.querySelector(".rw-send");
    if (send && !send.getAttribute("aria-label")) send.setAttribute("aria-label", "Send");
    var launcher = root.querySelector(".rw-launcher");
    if (launcher && !launcher.getAttribute("aria-label")) launcher.setAttribute("aria-label", "Open chat");
  }
  new MutationObserver(function () { enhance(document); })
    .observe(document.body, { childList: true, subtree: true });
})();
