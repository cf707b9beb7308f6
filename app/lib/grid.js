// The Mask Explorer grid in the browser (mounted by app/lib/grid_script.py as a Streamlit v2 component):
// 1. λ scrubs every card: while the grid's λ slider moves, each card shows its ladder frame nearest to the
//    slider (mask, mixed image, "λ requested → effective", label line and bar) in the same animation frame.
//    Releasing the slider is Streamlit's own: the server reruns and draws every card at the exact λ.
// 2. A click on a card's mask or mixed image, for a method with a pinnable centre, sends (method, x, y) to the
//    server, which pins the centre there.
// Ladders are hidden <div class="msda-ladder" data-card data-ladder> elements inside the cards (app/lib/ladder.py).
export default function ({ data, setTriggerValue }) {
  const grid = window.msdaGrid || (window.msdaGrid = install());
  grid.placeable = new Set((data && data.placeable) || []);
  grid.send = setTriggerValue;
  grid.scan();
  return undefined; // installed once per page; the observer lives as long as the page
}

function install() {
  const grid = { ladders: new Map(), keep: [], timings: [], scrubs: 0, placeable: new Set(), send: null };
  const slider = () => document.querySelector('.st-key-lam input[type=range]');

  grid.scan = () => {
    for (const element of document.querySelectorAll('.msda-ladder')) {
      const raw = element.dataset.ladder;
      const card = element.dataset.card;
      const known = grid.ladders.get(card);
      if (known && known.raw === raw) continue;
      const ladder = JSON.parse(raw);
      ladder.raw = raw;
      ladder.key = element.dataset.key;
      // decode every frame now, so a scrub only swaps already-decoded pictures
      for (const uri of ladder.masks.concat(ladder.mixed)) {
        const image = new Image();
        image.src = uri;
        image.decode().catch(() => {});
        grid.keep.push(image);
      }
      grid.ladders.set(card, ladder);
    }
    if (grid.keep.length > 4000) grid.keep = grid.keep.slice(-2000);
  };

  // React owns the card's text nodes: replacing them would leave React updating detached nodes after the
  // release. The frame's text goes into a span of our own beside them, hidden again once the server has
  // drawn the released λ (settled).
  const overlay = (element, content) => {
    let mine = element.querySelector(':scope > .msda-scrub');
    if (!mine) {
      mine = document.createElement('span');
      mine.className = 'msda-scrub';
      element.appendChild(mine);
    }
    mine.innerHTML = content;
    element.dataset.scrub = '1';
  };

  grid.show = (lam) => {
    const started = performance.now();
    document.body.classList.add('msda-scrubbing');
    for (const [card, ladder] of grid.ladders) {
      const root = document.querySelector(`.st-key-card-${card}`);
      const shown = root && root.querySelector('.msda-lamline');
      if (!shown || shown.dataset.ladder !== ladder.key) continue; // the card moved on; its ladder comes next
      let best = ladder.frames[0];
      for (const frame of ladder.frames) if (Math.abs(frame[0] - lam) < Math.abs(best[0] - lam)) best = frame;
      const [, mask, mixed, line, label, share] = best;
      const set = (selector, apply) => { const el = root.querySelector(selector); if (el) apply(el); };
      set('img[alt="mask"]', (el) => { el.src = ladder.masks[mask]; });
      set('img[alt="mixed image"]', (el) => { el.src = ladder.mixed[mixed]; });
      set('.msda-lamline', (el) => overlay(el, line));
      set('.msda-label', (el) => overlay(el, label));
      set('.msda-labelbar > div', (el) => { el.style.width = `${(Math.min(1, Math.max(0, share)) * 100).toFixed(1)}%`; });
    }
    grid.scrubs += 1;
    requestAnimationFrame(() => grid.timings.push(performance.now() - started));
  };

  const settled = () => {
    const input = slider();
    if (!input) return;
    const value = Number(input.value).toFixed(2);
    const lines = [...document.querySelectorAll('.msda-lamline[data-lam]')];
    if (!lines.every((el) => el.dataset.lam === value)) return;
    document.body.classList.remove('msda-scrubbing');
    for (const el of document.querySelectorAll('[data-scrub]')) {
      delete el.dataset.scrub;
      el.querySelectorAll(':scope > .msda-scrub').forEach((mine) => mine.remove());
    }
  };

  let pending = false;
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === 'attributes' && record.attributeName === 'aria-valuetext'
          && record.oldValue !== null && record.oldValue !== record.target.getAttribute('aria-valuetext')
          && record.target.closest('.st-key-lam') && !record.target.disabled
          && performance.now() - grid.touched < 1000) { // the person moves it, not a redraw
        grid.show(Number(record.target.value));
      }
    }
    if (!pending) { // new cards or ladders from the server: read them once per frame at most
      pending = true;
      requestAnimationFrame(() => { pending = false; grid.scan(); settled(); });
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeOldValue: true,
    attributeFilter: ['aria-valuetext'] });

  // Only a slider the person is moving scrubs: a rerun redraws the slider too.
  grid.touched = -Infinity;
  const touch = (event) => { if (event.target.closest && event.target.closest('.st-key-lam')) grid.touched = performance.now(); };
  for (const type of ['pointerdown', 'pointermove', 'keydown']) document.addEventListener(type, (event) => {
    if (type !== 'pointermove' || event.buttons) touch(event);
  }, true);
  document.addEventListener('pointermove', (event) => { if (event.buttons && grid.touched > 0) grid.touched = performance.now(); }, true);

  document.addEventListener('click', (event) => {
    const image = event.target.closest && event.target.closest('[class*="st-key-card-"] .msda-pics img');
    if (!image || !grid.send) return;
    const card = [...image.closest('[class*="st-key-card-"]').classList]
      .map((name) => name.match(/^st-key-card-(.+)$/)).find(Boolean);
    if (!card || !grid.placeable.has(card[1])) return;
    const box = image.getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const y = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
    grid.send('place', { method: card[1], x: Math.round(x * 100) / 100, y: Math.round(y * 100) / 100 });
  }, true);
  return grid;
}
