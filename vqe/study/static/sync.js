// Synchronised playback of several <video> elements: they play, pause, restart and loop
// together; the first one is the clock and the others are pulled back to it when they drift.
// Used by the study page and inlined into the static comparison page.
"use strict";
function SyncGroup(videos, onState) {
  const master = videos[0];
  const DRIFT = 0.08; // seconds a follower may lag before it is moved to the master's time
  let wantPlaying = true;
  let timer = null;
  const ready = () => videos.every((v) => v.readyState >= 3);
  const report = (text) => { if (onState) onState(text); };
  function playAll() {
    wantPlaying = true;
    if (!ready()) { report("loading…"); return; }
    videos.forEach((v) => { const p = v.play(); if (p) p.catch(() => {}); });
    report("playing");
  }
  function pauseAll() {
    wantPlaying = false;
    videos.forEach((v) => v.pause());
    report("paused");
  }
  function restart() {
    videos.forEach((v) => { v.currentTime = 0; });
    playAll();
  }
  function align() {
    if (master.paused || master.seeking) return;
    for (const v of videos.slice(1)) {
      if (!v.ended && Math.abs(v.currentTime - master.currentTime) > DRIFT) v.currentTime = master.currentTime;
    }
  }
  for (const v of videos) {
    v.muted = true;
    v.loop = false; // looping is done here so both restart at once
    v.addEventListener("canplay", () => { if (wantPlaying) playAll(); });
    v.addEventListener("waiting", () => { videos.forEach((o) => { if (o !== v) o.pause(); }); });
    v.addEventListener("playing", () => { if (wantPlaying && ready()) videos.forEach((o) => { if (o.paused) o.play().catch(() => {}); }); });
    v.addEventListener("error", () => report("this video cannot be played here"));
  }
  // Loop when the longest video has ended; a shorter one holds its last frame until then.
  videos.forEach((v) => v.addEventListener("ended", () => {
    if (wantPlaying && videos.every((o) => o.ended || o.currentTime >= o.duration - 0.05)) restart();
  }));
  timer = setInterval(align, 250);
  return {
    playAll, pauseAll, restart,
    toggle() { if (wantPlaying) pauseAll(); else playAll(); return wantPlaying; },
    playing: () => wantPlaying,
    ready,
    stop() { clearInterval(timer); pauseAll(); },
  };
}
