() => {
  // Swaps between a data view's picture and its figure (explorer/widgets.py DataView: a gr.Image and a
  // gr.Plot, one shown). Gradio mounts the component it shows and removes the other, and the new block has
  // no height until its content is drawn: a picture is 0 px high until it has loaded, a figure about two
  // thirds of its height until plotly has drawn it. A 2-D model's play on the Reverse tab swaps twice (its
  // frames are pictures, the figure returns at rest): the page below the view jumped up 360 px as the play
  // began and 124 px for 0.1-0.2 s as it ended, with nothing in the view meanwhile.
  //
  // Here the removed block's last drawn look (a copy of its nodes, a "ghost") stays laid over the new block,
  // which keeps the old one's height, until the new block is drawn (a loaded picture; a figure whose nodes
  // have been quiet for QUIET_MS) or MAX_MS went by. A block removed before it was drawn leaves the ghost
  // before it in place: the last thing drawn stays up. Ghosts lie under the Reverse player's own cover
  // (reverse_player.js), which waits for them to go.
  const QUIET_MS = 100, MAX_MS = 8000;  // MAX_MS: a busy laptop may take seconds to draw a figure
  const boxes = new WeakMap();    // a view block -> its height when last drawn
  const watched = new WeakSet();

  const isView = (node) => node.nodeType === 1 && node.classList.contains('de-view');
  const hasContent = (block) => {
    if (!block.isConnected || block.offsetParent === null) return false;
    const img = block.querySelector('img');
    return img ? img.complete && img.naturalWidth > 0 : !!block.querySelector('.main-svg');
  };
  const sizes = new ResizeObserver((entries) => {
    for (const e of entries) if (e.contentRect.height > 0 && hasContent(e.target)) boxes.set(e.target, e.target.offsetHeight);
  });
  const watch = (block) => {
    if (watched.has(block)) return;
    watched.add(block);
    sizes.observe(block);
  };

  // Once the new block is drawn, a steady view's block (class de-steady: its picture shows what its figure
  // does, as the Reverse tab's frames) keeps the old one's height if its own is within SAME of it: a 2-D
  // play's frames drawn on the server are a few percent shorter than the figure, and the page below would
  // shift by that at each swap. Other views, and a view of other data, take their own height.
  const SAME = 0.15;
  // a new block -> the ghost over it {el, since, changedAt, watcher}; several views may swap at once. Only a
  // block under a ghost has its nodes watched (a figure is drawn once they are quiet; a picture once
  // loaded), so the Forward slider's redraws of a figure at rest cost nothing here.
  const ghosts = new Map();
  const lay = (block, el, since = performance.now()) => {
    const g = {el, since, changedAt: performance.now(), watcher: new MutationObserver(() => { g.changedAt = performance.now(); })};
    if (!block.querySelector('img')) g.watcher.observe(block, {subtree: true, childList: true, attributes: true});
    if (!ghosts.size) requestAnimationFrame(settle);
    ghosts.set(block, g);
  };
  const drawn = (block, g) => hasContent(block)
    && (!!block.querySelector('img') || performance.now() - g.changedAt >= QUIET_MS);
  const unghost = (block) => {
    const g = ghosts.get(block);
    if (!g) return;
    ghosts.delete(block);
    g.watcher.disconnect();
    g.el.remove();
    const kept = block.style.minHeight;
    block.style.minHeight = '';
    const own = block.offsetHeight, old = parseFloat(kept);
    if (block.isConnected && block.classList.contains('de-steady') && own > 0 && Math.abs(own - old) <= SAME * old) {
      block.style.minHeight = kept;
    }
    if (hasContent(block)) boxes.set(block, block.offsetHeight);  // a kept height may leave it no resize to report
  };
  // A view in a tab that is not shown (a sub-tab the lesson or the user left, a whole other tab) has nothing
  // on screen to keep: a look laid over it would sit where its hidden block measures, the page's top-left
  // corner, over the tabs. Its column is what the tab hides (the block itself may be hidden by Gradio).
  const onScreen = (block) => !!block.parentElement && block.parentElement.offsetParent !== null;
  const settle = () => {  // each animation frame while a ghost is up
    const now = performance.now();
    for (const [block, g] of ghosts) {
      if (drawn(block, g) || !block.isConnected || !onScreen(block) || now - g.since > MAX_MS) unghost(block);
    }
    if (ghosts.size) requestAnimationFrame(settle);
  };
  const swapped = (old, now) => {
    const before = ghosts.get(old), height = boxes.get(old);
    if (before) { ghosts.delete(old); before.watcher.disconnect(); }
    if (!onScreen(now)) { if (before) before.el.remove(); return; }  // swapped out of sight: nothing to keep
    if (before && height === undefined) {  // removed before it was drawn: the look over it stays, over the new block
      now.style.minHeight = before.el.style.height;
      lay(now, before.el, before.since);
      return;
    }
    if (before) before.el.remove();  // drawn since: its own look replaces the older one
    if (height === undefined) return;  // never drawn: nothing to keep
    const r = now.getBoundingClientRect();
    const el = old.cloneNode(true);
    el.removeAttribute('id');
    el.querySelectorAll('[id]').forEach((n) => n.removeAttribute('id'));
    el.querySelectorAll('img').forEach((n) => { n.decoding = 'sync'; });
    el.classList.remove('de-view', 'de-steady');
    el.classList.add('de-ghost');
    el.setAttribute('aria-hidden', 'true');
    Object.assign(el.style, {position: 'absolute', left: `${r.left + scrollX}px`, top: `${r.top + scrollY}px`,
      width: `${r.width}px`, height: `${height}px`, margin: '0', zIndex: '49', pointerEvents: 'none',
      background: getComputedStyle(document.body).backgroundColor});
    document.body.appendChild(el);
    now.style.minHeight = `${height}px`;
    lay(now, el);
  };
  // Mutation records come before the browser paints, so the new block is never seen empty. Gradio may
  // mount the new block and remove the old one in two batches of records, in either order.
  const partnerId = (id) => (id.endsWith('-plot') ? id.slice(0, -5) : `${id}-plot`);
  let gone = null;  // a block removed with no partner mounted yet: {old, at}
  const mounts = new MutationObserver((records) => {
    const removed = [], added = [];
    for (const r of records) {
      r.removedNodes.forEach((n) => { if (isView(n)) removed.push(n); });
      r.addedNodes.forEach((n) => { if (isView(n)) added.push(n); });
    }
    for (const n of added) watch(n);
    for (const old of removed) {
      const now = document.getElementById(partnerId(old.id));
      if (now && now.isConnected) swapped(old, now);
      else gone = {old, at: performance.now()};
    }
    if (gone && performance.now() - gone.at < 1000) {
      const now = added.find((n) => n.id === partnerId(gone.old.id));
      if (now) { swapped(gone.old, now); gone = null; }
    }
  });
  const parents = new WeakSet();
  const find = () => {
    for (const block of document.querySelectorAll('.de-view')) {
      watch(block);
      const parent = block.parentElement;
      if (parent && !parents.has(parent)) { parents.add(parent); mounts.observe(parent, {childList: true}); }
    }
  };
  find();
  setInterval(find, 500);
}
