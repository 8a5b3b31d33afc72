/* Document page: n / p step through the marked matches; everything works without this file (each match links to the next). */
(function () {
  "use strict";

  var marks = Array.prototype.slice.call(document.querySelectorAll("mark[id^='m-']"));
  var prev = document.querySelector(".match-prev");
  var next = document.querySelector(".match-next");
  if (!marks.length) {
    return;
  }

  function current() {
    var id = decodeURIComponent(location.hash.slice(1));
    for (var i = 0; i < marks.length; i++) {
      if (marks[i].id === id) {
        return i;
      }
    }
    return -1;
  }

  // The links of the match after / before mark i: its own link leads on, even into another part of the document.
  function hrefAfter(i) {
    return i < 0 ? "#" + marks[0].id : marks[i].querySelector("a").getAttribute("href");
  }

  function hrefBefore(i) {
    if (i > 0) {
      return "#" + marks[i - 1].id;
    }
    var back = document.querySelector(".doc-pager .pager-prev");
    return back && i === 0 ? back.getAttribute("href") : "#" + marks[marks.length - 1].id;
  }

  function update() {
    var i = current();
    prev.href = hrefBefore(i);
    next.href = hrefAfter(i);
    prev.hidden = false;
    next.hidden = false;
  }

  function isTyping(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) {
      return;
    }
    if (event.key === "n" || event.key === "p") {
      event.preventDefault();
      // from the hash in force now, not from the links (their hashchange update may not have run yet)
      var i = current();
      location.href = event.key === "n" ? hrefAfter(i) : hrefBefore(i);
    }
  });
  window.addEventListener("hashchange", update);
  update();
})();
