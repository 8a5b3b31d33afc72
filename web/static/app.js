/* Progressive touches for the search page; everything works without this file. */
(function () {
  "use strict";

  var box = document.getElementById("q");
  if (!box) {
    return;
  }
  var form = box.form;

  function isTyping(target) {
    if (!target) {
      return false;
    }
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  // "/" jumps to the search box from anywhere on the page; Escape leaves it.
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target)) {
      event.preventDefault();
      box.focus();
      box.select();
    } else if (event.key === "Escape" && document.activeElement === box) {
      box.blur();
    }
  });

  // Clicking another mode re-runs the current query at once.  Keyboard users
  // move between modes with the arrow keys and press Enter to search, so a
  // mode chosen with the keyboard does not reload the page under them.
  var pointerChoice = false;
  var modes = form.querySelector(".modes");
  if (modes) {
    modes.addEventListener("pointerdown", function () {
      pointerChoice = true;
    });
    modes.addEventListener("change", function () {
      if (pointerChoice && box.value.trim()) {
        form.submit();
      }
      pointerChoice = false;
    });
    modes.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        form.submit();
      }
    });
  }

  // On a result page the caret goes to the end of the query, ready to refine it.
  if (document.activeElement === box && box.value) {
    var end = box.value.length;
    box.setSelectionRange(end, end);
  }
})();
