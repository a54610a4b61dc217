// Sandbot's embeddable web chat: a launcher bubble that opens the bot's chat
// in an iframe served by Sandbot (its own origin: the page around it never
// sees the conversation's token).
//
//   <script src="https://SANDBOT-HOST/widget.js" data-bot="BOT_ID"
//           data-lang="nl" data-token="JWT signed by your server"></script>
//   sandbot.open(); sandbot.close(); sandbot.init({ lang, token });
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = new URL(script.src).origin;
  var options = { bot: script.dataset.bot, lang: script.dataset.lang || navigator.language || "en", token: script.dataset.token || null };
  var frame = null;
  var bubble = document.createElement("button");
  bubble.type = "button";
  bubble.id = "sandbot-launcher";
  bubble.setAttribute("aria-label", "Open the chat");
  bubble.innerHTML = '<svg width="26" height="26" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true"><path d="M21 15a2 2 0 0 1-2 2H7l-4 4V5a2 2 0 0 1 2-2h14a2 2 0 0 1 2 2z"/></svg>';
  bubble.style.cssText = "position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;background:#2563eb;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000";
  bubble.onclick = function () { if (frame && frame.style.display !== "none") close(); else open(); };

  function ensure() {
    if (frame) return;
    frame = document.createElement("iframe");
    frame.id = "sandbot-chat";
    frame.title = "Chat";
    frame.src = origin + "/chat/" + encodeURIComponent(options.bot) + "?embed=1&lang=" + encodeURIComponent(options.lang);
    frame.style.cssText = "position:fixed;right:20px;bottom:88px;width:380px;max-width:calc(100vw - 40px);height:560px;max-height:calc(100vh - 120px);border:0;border-radius:14px;box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;z-index:2147483000";
    // The embed token goes to the chat by message, to Sandbot's origin only.
    frame.addEventListener("load", function () {
      frame.contentWindow.postMessage({ sandbot: "init", token: options.token, lang: options.lang }, origin);
    });
    document.body.appendChild(frame);
  }
  function open() { ensure(); frame.style.display = "block"; bubble.setAttribute("aria-expanded", "true"); }
  function close() { if (frame) frame.style.display = "none"; bubble.setAttribute("aria-expanded", "false"); }
  function init(o) {
    for (var k in o) options[k] = o[k];
    if (frame) { frame.remove(); frame = null; }
  }
  window.sandbot = { open: open, close: close, init: init };
  if (document.body) document.body.appendChild(bubble);
  else document.addEventListener("DOMContentLoaded", function () { document.body.appendChild(bubble); });
})();
