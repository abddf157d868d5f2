() => {
  // The Train tab's charts: while the tab is in view, ask the server once a second whether a training job
  // has changed (GET de-train-version, a few bytes, no Gradio event; explorer/train_ticks.py), and press
  // the hidden #tr-tick button, whose Gradio event redraws what changed for this page, only when it has:
  // at once when the tab comes into view, then when the answer moves, and every ten seconds whatever it
  // says (a redraw lost on a busy network is put right). The Gradio timer this replaces ticked every
  // second with or without a run, about 80 ms of main thread a tick on a 2-core laptop.
  const AGAIN_MS = 10000;
  let last = null, pressed = 0, asking = false;
  const inView = () => {
    const el = document.querySelector('#tr-start');
    return !!el && el.offsetParent !== null && document.visibilityState === 'visible';
  };
  const press = () => {
    const button = document.querySelector('#tr-tick');
    if (button) { button.click(); pressed = Date.now(); }
  };
  setInterval(async () => {
    if (asking) return;
    if (!inView()) { last = null; return; }  // out of view: redraw as soon as it is shown again
    asking = true;
    try {
      const r = await fetch('de-train-version', {cache: 'no-store', credentials: 'same-origin'});
      if (!r.ok) return;
      const key = await r.text();
      if (key !== last || Date.now() - pressed > AGAIN_MS) { last = key; press(); }
    } catch (_) {
      // the server is away for a moment: the next second asks again
    } finally {
      asking = false;
    }
  }, 1000);
}
