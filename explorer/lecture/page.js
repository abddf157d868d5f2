() => {
  // The lecture layer's one page script: presenter view, keyboard, fullscreen, and the URL that
  // follows the view. It targets the app's own elem_ids only (Gradio's DOM changes between versions).
  // Settings from Python: window.__DE = {present: bool, samplers: {label: key}, tabs: [...], firstViews: {tab: view}}.
  const DE = Object.assign({present: false, samplers: {}, tabs: [], firstViews: {}}, window.__DE || {});
  const $ = (s) => document.querySelector(s);
  const body = document.body;

  // --- presenter view: a class on <body> that present.css styles; the drawer holds the controls ---
  const setPresent = (on) => {
    body.classList.toggle('presenting', on);
    if (!on) body.classList.remove('drawer-open');
    const b = $('#de-present'); if (b) b.setAttribute('aria-pressed', String(on));
    window.dispatchEvent(new Event('resize'));  // plotly relayouts to the new sizes
  };
  // The presenter bar is fixed over the top right of the page; the main tab strip keeps clear of it by its
  // width (present.css), so that Gradio puts the tabs that do not fit behind its "..." menu, not under the bar
  // (at 800x600 Train and Evaluate lay under it).
  const watchBar = () => {
    const bar = $('#de-bar');
    if (!bar) { setTimeout(watchBar, 200); return; }
    const fit = () => {
      body.style.setProperty('--de-bar-w', `${bar.offsetWidth}px`);
      body.style.setProperty('--de-bar-h', `${bar.offsetHeight}px`);
      // under about 960 px (an 800x600 projector) the strip beside the bar has no room for the first tab and
      // the open one side by side (Gradio shows both, squeezed): there the strip goes under the bar
      body.classList.toggle('de-narrow', innerWidth < 960);
    };
    new ResizeObserver(fit).observe(bar);  // the bar's own size (presenter view on or off, a lesson's buttons)
    window.addEventListener('resize', fit);  // the window's, which leaves a fixed bar as it is
  };
  watchBar();
  const params = new URLSearchParams(location.search);
  setPresent(params.has('present') ? params.get('present') === '1' : !!DE.present);

  // --- high contrast (contrast.css): off, light or dark; dark also sets Gradio's own dark class ---
  const systemDark = body.classList.contains('dark');
  const CONTRASTS = ['off', 'light', 'dark'];
  let contrast = 'off';
  const setContrast = (mode) => {
    contrast = CONTRASTS.includes(mode) ? mode : 'off';
    body.classList.toggle('de-hc', contrast !== 'off');
    body.classList.toggle('dark', contrast === 'dark' || (contrast === 'off' && systemDark));
    const b = $('#de-contrast'); if (b) b.setAttribute('aria-pressed', String(contrast !== 'off'));
  };
  setContrast(params.get('contrast') || 'off');
  const nextContrast = () => setContrast(CONTRASTS[(CONTRASTS.indexOf(contrast) + 1) % CONTRASTS.length]);
  // Reverse frames of 2-D points and signals are charts (inverted in the dark theme); pictures of
  // images are data and never are. While a chart run plays its frames come as pictures, so the kind
  // is read when the view is at rest: the interactive figure shows for charts, the picture for images,
  // or a chart's picture that a play ended on (the Reverse player marks the body rv-chart-picture).
  const markChartFrames = () => {
    const plot = $('#rv-frame-plot'), img = $('#rv-frame');
    const cap = ($('#rv-caption') || {}).innerText || '';
    if ((plot && plot.offsetParent !== null) || body.classList.contains('rv-chart-picture')) body.classList.add('de-chart-frames');
    else if (img && img.offsetParent !== null && !/computing…|replaying/.test(cap)) body.classList.remove('de-chart-frames');
  };
  // --- the lesson card (presenter view): the stop's text along the bottom, shown again at each new stop.
  // Its height goes to --de-card-h (and a zoom factor to --de-shrink) so the main pictures make room.
  // which stop is shown, e.g. "Diffusion models in 50 minutes · stop 2 of 12" ('' when none): read from
  // textContent, which (unlike innerText) does not change when the card is hidden or the maths typeset
  const stopShown = () => {
    const m = (($('#de-lesson-text') || {}).textContent || '').match(/[^\n]*?· stop \d+ of \d+/);
    return m ? m[0].trim() : '';
  };
  const fitCard = () => {
    const card = $('#de-lesson');
    const on = body.classList.contains('presenting') && body.classList.contains('lesson-card') && card;
    const h = on ? Math.ceil(card.getBoundingClientRect().height) + 10 : 0;
    const was = body.style.getPropertyValue('--de-card-h');
    if (was === h + 'px') return;
    body.style.setProperty('--de-card-h', h + 'px');
    body.style.setProperty('--de-shrink', String(Math.max(0.5, 1 - h / (0.75 * innerHeight))));
    window.dispatchEvent(new Event('resize'));  // plotly relayouts to the new heights
  };
  const showCard = (on) => {
    body.classList.toggle('lesson-card', on);
    const head = $('#de-lesson > button');  // a closed accordion has not drawn its content yet: open it
    const content = head && head.nextElementSibling;
    if (on && content && getComputedStyle(content).display === 'none') head.click();
    fitCard();
  };
  let stopSeen = '', wasPresenting = false;
  const followLesson = () => {  // runs with the URL writer: a new stop, or the presenter view turned on mid-lesson
    const stop = stopShown(), presenting = body.classList.contains('presenting');
    body.classList.toggle('lesson-running', !!stop);
    if (stop && presenting && (stop !== stopSeen || !wasPresenting)) showCard(true);
    if (stop) stopSeen = stop;
    wasPresenting = presenting;
    fitCard();
  };
  // a student's phone (?student=1, the join card's address): the quiz alone
  body.classList.toggle('student', params.get('student') === '1');
  const showJoin = (on) => { const c = $('#de-join'); if (c) c.classList.toggle('open', on); };
  document.addEventListener('click', (e) => {
    if (e.target.closest('#de-join-button')) showJoin(true);
    else if (e.target.closest('#de-join-close') || e.target.id === 'de-join') showJoin(false);
    else if (e.target.closest('#de-present')) setPresent(!body.classList.contains('presenting'));
    else if (e.target.closest('#de-contrast')) nextContrast();
    else if (e.target.closest('#de-drawer')) body.classList.toggle('drawer-open');
    else if (e.target.closest('#de-lesson-card-button')) showCard(!body.classList.contains('lesson-card'));
    else if (e.target.closest('#de-keys-button')) showKeys(true);
    else if (e.target.closest('#de-keys-close') || e.target.id === 'de-keys') showKeys(false);
  }, true);

  // --- the key map ---
  const KEYS = [
    ['Space', 'Play / Pause (Reverse); Start / Pause / Resume (Train)'],
    ['← →', 'one step (Reverse) or t ± 1% of T (Forward)'],
    ['Shift + ← →', 't ± 10% of T (Forward); ten steps (Reverse)'],
    ['Home / End', 't = 0 / t = T (Forward); first / last frame (Reverse)'],
    ['1 2 3 4', 'Forward, Reverse, Train, Evaluate'],
    ['P', 'presenter view on / off'], ['C', 'the controls drawer (presenter view)'],
    ['L', 'the lesson card: the stop\'s text and equation (presenter view)'],
    ['H', 'high contrast: light, dark, off'],
    ['F', 'fullscreen of the main picture (Esc leaves)'], ['J', 'the class\'s join card (QR code of the quiz)'],
    ['?', 'this key map'],
  ];
  const showKeys = (on) => {
    let box = $('#de-keys');
    if (!box) {
      box = document.createElement('div');
      box.id = 'de-keys';
      box.innerHTML = '<div class="de-keys-card" role="dialog" aria-label="Keyboard shortcuts"><h2>Keys</h2><table>' +
        KEYS.map(([k, v]) => `<tr><th>${k}</th><td>${v}</td></tr>`).join('') +
        '</table><button id="de-keys-close">Close (Esc)</button></div>';
      body.appendChild(box);
    }
    box.style.display = on ? 'flex' : 'none';
  };

  // --- which tab is open, and its main view ---
  const currentTab = () => {
    const b = document.querySelector('button[role=tab][aria-selected=true][id^="tab-"]');
    return b ? b.id.replace(/^tab-/, '').replace(/-button$/, '') : 'forward';
  };
  const MAIN = {
    forward: ['#ximg', '#ximg-plot'], reverse: ['#rv-frame', '#rv-frame-plot'],
    train: ['#tr-loss', '#tr-preview', '#tr-preview-plot'], evaluate: ['#ev-samples', '#ev-samples-plot', '#ev-table'],
  };
  const mainView = () => {
    for (const s of MAIN[currentTab()] || []) {
      const el = $(s);
      if (el && el.offsetParent !== null) return el;
    }
    return null;
  };
  const toggleFullscreen = () => {
    if (document.fullscreenElement) { document.exitFullscreen(); return; }
    const el = mainView();
    if (el && el.requestFullscreen) el.requestFullscreen().then(() => window.dispatchEvent(new Event('resize')));
  };
  document.addEventListener('fullscreenchange', () => window.dispatchEvent(new Event('resize')));

  // --- moving a slider as a user would: its own input event, so Gradio runs the same handlers ---
  const nudge = (sel, delta, to) => {
    const r = $(sel + ' input[type=range]');
    if (!r || r.disabled) return false;
    const lo = +r.min, hi = +r.max;
    let v = to === 'min' ? lo : to === 'max' ? hi : +r.value + delta;
    v = Math.max(lo, Math.min(hi, Math.round(v)));
    if (v === +r.value) return true;
    r.value = String(v);
    r.dispatchEvent(new Event('input', {bubbles: true}));
    r.dispatchEvent(new Event('change', {bubbles: true}));
    return true;
  };
  const click = (sel) => { const b = $(sel); if (b && !b.disabled) { b.click(); return true; } return false; };

  const typing = (el) => {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName.toLowerCase();
    if (tag === 'textarea' || tag === 'select') return true;
    return tag === 'input' && !['checkbox', 'radio', 'button', 'submit'].includes((el.type || '').toLowerCase());
  };

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    const tab = currentTab();
    const k = e.key;
    // a focused slider or radio group moves itself with the arrows: do not move it twice
    const own = e.target && ['range', 'radio'].includes((e.target.type || '').toLowerCase());
    if (own && ['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown'].includes(k)) return;
    let done = true;
    if (k === '?') showKeys($('#de-keys') === null || $('#de-keys').style.display === 'none');
    else if (k === 'Escape') showKeys(false), showJoin(false), body.classList.remove('drawer-open');
    else if (body.classList.contains('student')) done = false;  // a phone's page has no shortcuts
    else if (k === 'j' || k === 'J') showJoin(!($('#de-join') || {classList: {contains: () => false}}).classList.contains('open'));
    else if (k === 'p' || k === 'P') setPresent(!body.classList.contains('presenting'));
    else if (k === 'h' || k === 'H') nextContrast();
    else if ((k === 'c' || k === 'C') && body.classList.contains('presenting')) body.classList.toggle('drawer-open');
    else if ((k === 'l' || k === 'L') && body.classList.contains('presenting')) {
      // the stop shown counts as seen: a writer that runs late must not bring back a card L just hid
      stopSeen = stopShown() || stopSeen;
      showCard(!body.classList.contains('lesson-card'));
    }
    else if (k === 'f' || k === 'F') toggleFullscreen();
    else if (['1', '2', '3', '4'].includes(k)) click(`#tab-${DE.tabs[+k - 1]}-button`);
    else if (k === 'PageDown' || k === 'PageUp') done = click(k === 'PageDown' ? '#de-lesson-next' : '#de-lesson-prev');
    else if (tab === 'forward' && ['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(k)) {
      const r = $('#tslider input[type=range]');
      const step = Math.max(1, Math.round((r ? +r.max : 1000) * (e.shiftKey ? 0.1 : 0.01)));
      done = nudge('#tslider', k === 'ArrowLeft' ? -step : step, k === 'Home' ? 'min' : k === 'End' ? 'max' : null);
    } else if (tab === 'reverse' && k === ' ') {
      const cap = ($('#rv-caption') || {}).innerText || '';
      done = click(/computing…|replaying/.test(cap) ? '#rv-pause' : '#rv-play');
    } else if (tab === 'reverse' && (k === 'ArrowLeft' || k === 'ArrowRight')) {
      if (e.shiftKey) done = nudge('#rv-scrub', k === 'ArrowLeft' ? -10 : 10);
      else done = click(k === 'ArrowLeft' ? '#rv-back' : '#rv-fwd');
    } else if (tab === 'reverse' && (k === 'Home' || k === 'End')) done = nudge('#rv-scrub', 0, k === 'Home' ? 'min' : 'max');
    else if (tab === 'train' && k === ' ') {
      const st = ($('#tr-status') || {}).innerText || '';
      done = click(st.includes('running') ? '#tr-pause' : st.includes('paused') ? '#tr-resume' : '#tr-start');
    } else done = false;
    if (done) e.preventDefault();
  });

  // --- the URL follows the view (replaceState: no reload, no history entries) ---
  const val = (sel) => { const el = $(sel); return el && el.offsetParent !== null ? el.value : null; };
  const radio = (sel) => { const el = $(sel + ' input:checked'); return el ? el.value : null; };
  const readView = () => {
    const p = new URLSearchParams();
    const tab = currentTab();
    p.set('tab', tab);
    if (tab === 'forward') {
      const source = radio('#fw-source');
      if (source) p.set('source', source.toLowerCase());
      const input = val('#fw-photo input') || val('#fw-dataset input');
      if (input) p.set('input', input);
      const index = val('#fw-index input[type=number]');
      if (index !== null && source === 'Dataset') p.set('index', index);
      for (const [key, sel] of [['schedule', '#fw-schedule input'], ['T', '#fw-T input[type=number]'],
                                ['t', '#tslider input[type=number]'], ['seed', '#fw-seed input']]) {
        const v = val(sel); if (v !== null && v !== '') p.set(key, v);
      }
    } else if (tab === 'reverse') {
      const ck = val('#rv-ckpt input'); if (ck) p.set('checkpoint', ck.split(' · ')[0]);
      const sl = val('#rv-sampler input'); if (sl) p.set('sampler', DE.samplers[sl] || sl);
      for (const [key, sel] of [['steps', '#rv-steps input[type=number]'], ['eta', '#rv-eta input[type=number]'],
                                ['seed', '#rv-seed input'], ['n', '#rv-n input[type=number]'],
                                ['frame', '#rv-scrub input[type=number]']]) {
        const v = val(sel); if (v !== null && v !== '') p.set(key, v);
      }
      const sp = radio('#rv-spacing'); if (sp && sp !== 'linear') p.set('spacing', sp);
      const cmp = $('#rv-compare input[type=checkbox]');
      if (cmp && cmp.checked) {  // a second sampler beside the first
        p.set('compare', '1');
        const sb = val('#rv-sampler-b input'); if (sb) p.set('sampler_b', DE.samplers[sb] || sb);
        const nb = val('#rv-steps-b input[type=number]'); if (nb) p.set('steps_b', nb);
      }
    }
    // the inner view open in this tab (Compare schedules, Human evaluation, ...): its gr.Tab's elem_id is view-<id>
    const sub = document.querySelector(`#tab-${tab} button[role=tab][aria-selected=true][id^="view-"]`);
    if (sub) { const v = sub.id.replace(/^view-/, '').replace(/-button$/, ''); if (v !== DE.firstViews[tab]) p.set('view', v); }
    // a running lesson: its file name (the chooser's value) and the stop shown, so the link reopens there
    const stop = stopShown().match(/· stop (\d+) of/), lesson = ($('#de-lesson-choice input') || {}).value;
    if (stop && lesson) { p.set('lesson', lesson); p.set('stop', stop[1]); }
    if (body.classList.contains('presenting')) p.set('present', '1');
    if (body.classList.contains('student')) p.set('student', '1');
    if (contrast !== 'off') p.set('contrast', contrast);
    if (params.get('__theme')) p.set('__theme', params.get('__theme'));  // Gradio's own: the link keeps its theme
    return p.toString();
  };
  let written = null;
  const markPixels = () => {  // small dataset images keep hard pixels when scaled; photos stay smooth
    const trio = $('#fw-trio');
    if (trio) trio.classList.toggle('de-pixels', radio('#fw-source') === 'Dataset');
  };
  const writeUrl = (now) => {
    // not while a run plays (its feed is named): the frame number changes four times a second, and
    // each history.replaceState and each read of the view (which lays the page out) cost the player
    // time; the closing view clears the feed and the URL catches up
    if (now !== true && $('#rv-feed [data-feed]')) return;
    followLesson();
    markPixels();
    markChartFrames();
    const q = readView();
    if (q !== written) { written = q; history.replaceState(null, '', location.pathname + '?' + q); }
  };
  window.__deReadView = readView;
  // Writing starts once the server has applied the link's own settings (its load event marks
  // #de-ready): before that the page shows defaults, which must not overwrite the link.
  const start = setInterval(() => {
    if ($('#de-ready [data-ready]')) { clearInterval(start); writeUrl(); setInterval(writeUrl, 400); }
  }, 100);
  document.addEventListener('click', (e) => {
    const b = e.target.closest('#de-copy-link');
    if (!b) return;
    writeUrl(true);
    const done = (ok) => { b.dataset.copied = ok ? '1' : '0'; b.innerText = ok ? 'Link copied' : location.href; };
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(location.href).then(() => done(true), () => done(false));
    else {  // plain http on the LAN: the async clipboard is unavailable, the old command still works
      const ta = document.createElement('textarea'); ta.value = location.href; body.appendChild(ta); ta.select();
      let ok = false; try { ok = document.execCommand('copy'); } catch (_) {}
      ta.remove(); done(ok);
    }
  }, true);
}
