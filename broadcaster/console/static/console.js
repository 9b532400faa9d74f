/* broadcaster console: the little the pages do in the browser (no inline scripts). */
"use strict";

/* Scroll each wide timeline picture so that "now" is in view, a third from the left. */
function showNow() {
  for (const box of document.querySelectorAll(".picture")) {
    const line = box.querySelector("g.now line");
    const svg = box.querySelector("svg");
    if (!line || !svg || box.scrollWidth <= box.clientWidth) continue;
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    box.scrollLeft = Math.max(0, line.x1.baseVal.value * scale - box.clientWidth / 3);
  }
}

document.addEventListener("DOMContentLoaded", showNow);
