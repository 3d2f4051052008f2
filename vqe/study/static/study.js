// The rater's page: instructions, then one comparison after another through the JSON API.
// The rater's key is kept in localStorage (per study), so a reload or a restarted server
// continues where the rater stopped.
"use strict";
(function () {
  const token = location.pathname.split("/").filter(Boolean)[1];
  const storeKey = "vqe-study:" + token;
  const $ = (id) => document.getElementById(id);
  const left = $("left"), right = $("right");
  let rater = localStorage.getItem(storeKey);
  let trial = null; // the trial shown: {assignment, left, right, voted, total}
  let factor = "";
  let busy = false;
  let group = null;

  function show(section) {
    for (const id of ["intro", "trial", "done"]) $(id).hidden = id !== section;
    document.body.dataset.state = section;
  }
  function error(where, text) { const el = $(where); el.textContent = text; el.hidden = !text; }
  function setState(text) {
    $("status").textContent = text;
    if (trial && text === "playing") document.body.dataset.state = "ready";
  }

  async function api(path, body) {
    const options = body === undefined ? {} :
      { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch("api/" + path, options);
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data };
  }

  function render(next) {
    if (next.done) {
      show("done");
      if (next.full) $("done-text").textContent = "This study has all the votes it needs. Thank you!";
      if (group) group.stop();
      return;
    }
    trial = next;
    factor = "";
    document.querySelectorAll(".factor").forEach((b) => b.classList.remove("selected"));
    $("bar").style.width = (100 * next.voted / next.total) + "%";
    $("count").textContent = "Pair " + (next.voted + 1) + " of " + next.total;
    show("trial");
    document.body.dataset.state = "loading";
    document.body.dataset.assignment = next.assignment;
    if (!group) group = SyncGroup([left, right], setState);
    left.src = next.left;
    right.src = next.right;
    group.playAll();
    $("playpause").textContent = "Pause";
  }

  async function load() {
    const { status, data } = await api("next?rater=" + encodeURIComponent(rater));
    if (status === 403) { localStorage.removeItem(storeKey); rater = null; show("intro"); return; }
    if (status !== 200) { error("trial-error", data.error || "the server did not answer"); return; }
    render(data);
  }

  async function vote(value) {
    if (busy || !trial || document.body.dataset.state === "done") return;
    busy = true;
    document.body.dataset.state = "sending";
    try {
      const { status, data } = await api("votes",
        { rater, assignment: trial.assignment, vote: value, factor });
      if (status === 200) { error("trial-error", ""); render(data); }
      else if (status === 409) { await load(); } // already voted (e.g. another tab): move on
      else { error("trial-error", data.error || ("error " + status)); document.body.dataset.state = "ready"; }
    } catch (e) {
      error("trial-error", "the server cannot be reached; your vote was not recorded, try again");
      document.body.dataset.state = "ready";
    } finally { busy = false; }
  }

  function chooseFactor(name) {
    factor = factor === name ? "" : name; // pressing it again clears it
    document.querySelectorAll(".factor").forEach((b) =>
      b.classList.toggle("selected", b.dataset.factor === factor));
  }

  $("start-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!rater) {
      const { status, data } = await api("raters", { name: $("name").value });
      if (status !== 201) { error("intro-error", data.error || ("error " + status)); return; }
      rater = data.rater;
      localStorage.setItem(storeKey, rater);
    }
    await load();
  });
  document.querySelectorAll(".vote").forEach((b) =>
    b.addEventListener("click", () => vote(Number(b.dataset.vote))));
  document.querySelectorAll(".factor").forEach((b) =>
    b.addEventListener("click", () => chooseFactor(b.dataset.factor)));
  $("playpause").addEventListener("click", () => {
    if (group) $("playpause").textContent = group.toggle() ? "Pause" : "Play";
  });
  $("restart").addEventListener("click", () => { if (group) group.restart(); });

  const FACTOR_KEYS = { c: "colors", b: "brightness", s: "skintone" };
  document.addEventListener("keydown", (event) => {
    if ($("trial").hidden || event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
    const key = event.key.toLowerCase();
    if ("12345".includes(key) && key.length === 1) { event.preventDefault(); vote(Number(key)); }
    else if (FACTOR_KEYS[key]) { event.preventDefault(); chooseFactor(FACTOR_KEYS[key]); }
    else if (key === " ") { event.preventDefault(); $("playpause").click(); }
    else if (key === "r") { event.preventDefault(); $("restart").click(); }
  });

  if (rater) { $("start").textContent = "Continue"; $("name").disabled = true; }
  show("intro");
})();
