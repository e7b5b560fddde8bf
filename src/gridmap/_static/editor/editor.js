/* gridmap: the page a planner adjusts a plan on by hand (edit.html).
 *
 * Plain ES2017 and Leaflet, no framework; the data is the JSON of
 * gridmap.editor.editor_data in the element #gridmap-data.  The rules of balance
 * are gridmap.band's, so that the figures shown are those gridmap apply gives:
 * a community's mean is the mean weight of its ordinary grids (community grids,
 * not flagged, not one indivisible unit), or of all its community grids when it
 * has no ordinary one; deviation = weight / mean - 1; in the band when
 * |deviation| <= tolerance + eps; a grid of one indivisible unit above the band
 * is the "oversize" exception; road and unit grids have no band.
 */
(function () {
  'use strict';

  var DATA = JSON.parse(document.getElementById('gridmap-data').textContent);
  var EPS = DATA.tolerance_eps;
  var grids = DATA.grids;
  var features = DATA.units.features;
  var pairs = DATA.adjacency;
  var nUnits = features.length;
  var nGrids = grids.length;
  // with more grids than this the codes show only when zoomed in (as on the maps)
  var MANY_GRIDS = 300;
  var LABEL_ZOOM = 15;

  // ids are matched as text, so that 12 and "12" name one grid, as gridmap apply does
  function key(id) { return String(id); }

  var gridPos = new Map();
  grids.forEach(function (g, i) { gridPos.set(key(g.grid_id), i); });
  var unitPos = new Map();
  features.forEach(function (f, i) { unitPos.set(key(f.properties.unit_id), i); });

  var original = new Int32Array(nUnits);
  var unitWeight = new Float64Array(nUnits);
  var unitHouseholds = new Float64Array(nUnits);
  var unitBuildings = new Int32Array(nUnits);
  var hasHouseholds = false;
  features.forEach(function (f, u) {
    var p = f.properties;
    original[u] = gridPos.get(key(p.grid_id));
    unitWeight[u] = p.weight || 0;
    if (p.households !== null && p.households !== undefined) {
      hasHouseholds = true;
      unitHouseholds[u] = p.households;
    }
    unitBuildings[u] = p.n_buildings || 0;
  });
  var assign = Int32Array.from(original);

  var neighbours = [];
  var unitPairs = [];
  for (var u0 = 0; u0 < nUnits; u0++) { neighbours.push([]); unitPairs.push([]); }
  pairs.forEach(function (p, k) {
    neighbours[p[0]].push(p[1]); neighbours[p[1]].push(p[0]);
    unitPairs[p[0]].push(k); unitPairs[p[1]].push(k);
  });

  var members = grids.map(function () { return new Set(); });
  for (var u1 = 0; u1 < nUnits; u1++) { members[assign[u1]].add(u1); }
  var gridWeight = new Float64Array(nGrids);
  var gridHouseholds = new Float64Array(nGrids);
  var gridBuildings = new Int32Array(nGrids);
  // how many units differ from the plan as loaded: 0 means the grid is as it was
  var changedUnits = new Int32Array(nGrids);
  var piecesCache = new Int32Array(nGrids).fill(-1);
  var locked = new Uint8Array(nGrids);

  var communities = new Map();
  grids.forEach(function (g, i) {
    if (g.kind !== 'community') { return; }
    var c = key(g.community_id);
    if (!communities.has(c)) { communities.set(c, []); }
    communities.get(c).push(i);
  });

  // sums made again from the units each time, never added up move by move, so
  // that no rounding drifts from the sums gridmap makes
  function resum(g) {
    var w = 0, h = 0, b = 0;
    Array.from(members[g]).sort(function (a, c) { return a - c; }).forEach(function (u) {
      w += unitWeight[u]; h += unitHouseholds[u]; b += unitBuildings[u];
    });
    gridWeight[g] = w; gridHouseholds[g] = h; gridBuildings[g] = b;
    piecesCache[g] = -1;
  }
  for (var g0 = 0; g0 < nGrids; g0++) { resum(g0); }

  // ------------------------------------------------------------------ the rules
  function isSingle(g) {
    if (changedUnits[g] === 0) { return !!grids[g].single_unit; }
    // as gridmap.metrics judges a grid: oversize, and one unit or one building
    return grids[g].flag === 'oversize' && (members[g].size === 1 || gridBuildings[g] === 1);
  }

  function isOrdinary(g) {
    return grids[g].kind === 'community' && !grids[g].flag && !isSingle(g) &&
      members[g].size > 0;
  }

  function communityMean(communityId) {
    var mine = communities.get(key(communityId)) || [];
    var live = mine.filter(function (g) { return members[g].size > 0; });
    var ordinary = live.filter(isOrdinary);
    var use = ordinary.length ? ordinary : live;
    if (!use.length) { return NaN; }
    var total = 0;
    use.forEach(function (g) { total += gridWeight[g]; });
    return total / use.length;
  }

  // connected pieces of the units of grid g, with unit `out` left out and unit
  // `extra` put in (-1: none)
  function countPieces(g, out, extra) {
    var seen = new Set();
    var pieces = 0;
    function inGrid(v) { return v === extra || (v !== out && assign[v] === g); }
    var all = Array.from(members[g]);
    if (extra >= 0) { all.push(extra); }
    all.forEach(function (start) {
      if (!inGrid(start) || seen.has(start)) { return; }
      pieces += 1;
      seen.add(start);
      var queue = [start];
      while (queue.length) {
        var v = queue.pop();
        neighbours[v].forEach(function (w) {
          if (!seen.has(w) && inGrid(w)) { seen.add(w); queue.push(w); }
        });
      }
    });
    return pieces;
  }

  function pieces(g) {
    if (piecesCache[g] < 0) { piecesCache[g] = countPieces(g, -1, -1); }
    return piecesCache[g];
  }

  function figuresAt(g) {
    var G = grids[g];
    var w = gridWeight[g];
    var n = pieces(g);
    var out = {
      grid_id: G.grid_id, code: G.code, kind: G.kind, community_id: G.community_id,
      weight: w, households: hasHouseholds ? gridHouseholds[g] : null,
      n_units: members[g].size, n_buildings: gridBuildings[g],
      pieces: n, one_piece: n === 1, locked: !!locked[g],
      mean: null, deviation: null, deviation_target: null, tolerance: G.tolerance,
      in_band: null, single_unit: isSingle(g), status: 'no band'
    };
    if (G.kind !== 'community') { return out; }
    var mean = communityMean(G.community_id);
    var dev = w / mean - 1;
    out.mean = mean;
    out.deviation = dev;
    out.deviation_target = G.target ? w / G.target - 1 : null;
    out.in_band = Math.abs(dev) <= G.tolerance + EPS;
    var oversize = out.single_unit && dev > G.tolerance + EPS;
    out.status = oversize ? 'oversize' : out.in_band ? 'in' : 'out';
    return out;
  }

  // ------------------------------------------------------------------ the map
  var map = L.map('gm-map', {
    renderer: L.svg({padding: 0.5}), preferCanvas: false, boxZoom: false,
    zoomSnap: 0.25, attributionControl: true
  });
  map.attributionControl.setPrefix('Leaflet');
  L.control.scale({imperial: false, maxWidth: 160}).addTo(map);
  [['gm-streets', 410], ['gm-borders', 420], ['gm-marks', 430], ['gm-labels', 450]]
    .forEach(function (p) {
      var pane = map.createPane(p[0]);
      pane.style.zIndex = String(p[1]);
      // drawn over the units, and clicked through to them
      pane.style.pointerEvents = 'none';
    });

  var state = {selected: -1, mode: 'pick', brushing: false, stroke: null, shift: false};
  var done = [];
  var undone = [];
  var touched = [];
  // the edits as last saved (as loaded: none): leaving with others asks first
  var saved = null;

  function unitStyle(u) {
    var g = assign[u];
    var moved = g !== original[u];
    return {
      fillColor: grids[g].colour, fillOpacity: g === state.selected ? 0.85 : 0.5,
      color: moved ? '#222222' : '#ffffff', weight: moved ? 1.2 : 0.6,
      opacity: moved ? 0.9 : 0.8, dashArray: moved ? '3 2' : null
    };
  }

  var unitLayers = new Array(nUnits);
  var unitsLayer = L.geoJSON(DATA.units, {
    style: function (f) { return unitStyle(unitPos.get(key(f.properties.unit_id))); },
    onEachFeature: function (f, layer) {
      var u = unitPos.get(key(f.properties.unit_id));
      layer.gmUnit = u;
      unitLayers[u] = layer;
    }
  }).addTo(map);

  if (DATA.streets) {
    L.geoJSON(DATA.streets, {
      pane: 'gm-streets', interactive: false,
      style: function () { return {color: '#777777', weight: 0.8, opacity: 0.6}; }
    }).addTo(map);
  }

  var OUTLINE = {color: '#222222', weight: 2.2, opacity: 0.95};
  var OUTLINE_SELECTED = {color: '#000000', weight: 4, opacity: 1};
  if (DATA.outline.length) {
    L.polyline(DATA.outline, Object.assign({pane: 'gm-borders', interactive: false},
      OUTLINE)).addTo(map);
  }
  var borderLayers = new Array(pairs.length);
  function restyleBorder(k) {
    var a = assign[pairs[k][0]], b = assign[pairs[k][1]];
    var layer = borderLayers[k];
    if (a === b || !DATA.borders[k].length) {
      if (layer) { map.removeLayer(layer); borderLayers[k] = null; }
      return;
    }
    var style = (a === state.selected || b === state.selected) ? OUTLINE_SELECTED : OUTLINE;
    if (!layer) {
      borderLayers[k] = L.polyline(DATA.borders[k], Object.assign(
        {pane: 'gm-borders', interactive: false}, style)).addTo(map);
    } else {
      layer.setStyle(style);
    }
  }
  for (var k0 = 0; k0 < pairs.length; k0++) { restyleBorder(k0); }

  function restyleUnit(u) {
    if (unitLayers[u]) { unitLayers[u].setStyle(unitStyle(u)); }
    unitPairs[u].forEach(restyleBorder);
  }

  var labelLayer = L.layerGroup().addTo(map);
  // the text element is kept across the label's removal and return (zoom)
  var labelTexts = grids.map(function (g) {
    if (!g.label) { return null; }
    var text = document.createElement('div');
    text.className = 'gm-label-text';
    text.textContent = g.code ? String(g.code).slice(-3) : String(g.grid_id);
    L.marker(g.label, {
      icon: L.divIcon({html: text, className: 'gm-label', iconSize: null}),
      interactive: false, keyboard: false, pane: 'gm-labels'
    }).addTo(labelLayer);
    return text;
  });
  function restyleLabel(g) {
    var el = labelTexts[g];
    if (!el) { return; }
    el.classList.toggle('gm-label-selected', g === state.selected);
    el.classList.toggle('gm-label-locked', !!locked[g]);
    el.style.display = members[g].size ? '' : 'none';
  }
  function followZoom() {
    if (nGrids <= MANY_GRIDS) { return; }
    if (map.getZoom() >= LABEL_ZOOM) { labelLayer.addTo(map); } else { labelLayer.remove(); }
  }
  map.on('zoomend', followZoom);

  var marks = L.layerGroup().addTo(map);

  // ------------------------------------------------------------------ the panel
  var panel = document.getElementById('gm-panel');
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }

  add(panel, el('h1', {}, '网格调整 adjust grids'));
  add(panel, el('div', {'class': 'gm-plan'},
    'plan ' + DATA.plan + ' · 均衡字段 balanced by ' + DATA.by + ' · ' + nGrids +
    ' grids, ' + nUnits + ' units'));

  var modeBar = add(panel, el('div', {'class': 'gm-row gm-modes', role: 'radiogroup'}));
  var MODES = [['pick', '选取 pick'], ['move', '移入 move'], ['brush', '刷选 brush']];
  var modeButtons = {};
  MODES.forEach(function (m) {
    var b = add(modeBar, el('button', {type: 'button', id: 'gm-mode-' + m[0],
      'data-mode': m[0]}, m[1]));
    b.addEventListener('click', function () { setMode(m[0]); });
    modeButtons[m[0]] = b;
  });

  var pickRow = add(panel, el('div', {'class': 'gm-row'}));
  add(pickRow, el('label', {'for': 'gm-grid-select'}, '网格 grid '));
  var gridSelect = add(pickRow, el('select', {id: 'gm-grid-select'}));
  add(gridSelect, el('option', {value: ''}, '— 选择网格 pick a grid —'));
  grids.map(function (g, i) { return i; })
    .sort(function (a, b) { return String(grids[a].code).localeCompare(String(grids[b].code)); })
    .forEach(function (i) {
      var g = grids[i];
      add(gridSelect, el('option', {value: String(i)}, g.code + ' (grid ' + g.grid_id + ')' +
        (g.kind !== 'community' ? ' ' + g.kind : '')));
    });
  gridSelect.addEventListener('change', function () {
    if (gridSelect.value !== '') {
      selectAt(Number(gridSelect.value));
      showAt(Number(gridSelect.value));
    }
  });

  var tools = add(panel, el('div', {'class': 'gm-row'}));
  var undoButton = add(tools, el('button', {type: 'button', id: 'gm-undo',
    title: 'Ctrl+Z'}, '撤销 undo'));
  var redoButton = add(tools, el('button', {type: 'button', id: 'gm-redo',
    title: 'Ctrl+Y'}, '重做 redo'));
  var saveButton = add(tools, el('button', {type: 'button', id: 'gm-save',
    'class': 'gm-primary'}, '保存 Save edits'));
  undoButton.addEventListener('click', function () { undo(); });
  redoButton.addEventListener('click', function () { redo(); });
  saveButton.addEventListener('click', function () { save(); });

  var searchRow = add(panel, el('form', {'class': 'gm-row', id: 'gm-search-form'}));
  var searchBox = add(searchRow, el('input', {type: 'search', id: 'gm-search',
    placeholder: '楼栋编号或地址 building id or address'}));
  add(searchRow, el('button', {type: 'submit', id: 'gm-search-go'}, '查找 find'));
  searchRow.addEventListener('submit', function (e) {
    e.preventDefault();
    search(searchBox.value);
  });

  var message = add(panel, el('div', {id: 'gm-message', role: 'status'}));
  add(panel, el('h2', {}, '网格 grids picked and changed'));
  var tbody = add(panel, el('div', {id: 'gm-rows'}));

  add(panel, el('label', {'for': 'gm-note', 'class': 'gm-note-label'}, '备注 note'));
  var note = add(panel, el('textarea', {id: 'gm-note', rows: '3',
    placeholder: '调整原因 why these edits (saved with them)'}));
  add(panel, el('div', {'class': 'gm-help'},
    '选取 pick: click a unit to pick its grid. 移入 move: click units to move them into ' +
    'the grid picked (Alt+click picks). 刷选 brush, or Shift held: every unit the ' +
    'pointer passes over with the button down moves in. Ctrl+Z undo, Ctrl+Y redo. ' +
    'Locked grids neither give nor take units. "Save edits" downloads edits.json for ' +
    'gridmap apply.'));

  function say(text, kind) {
    message.textContent = text;
    message.className = kind || 'gm-info';
  }

  function fmtNumber(v) {
    if (v === null || v === undefined || !isFinite(v)) { return '–'; }
    var whole = Math.abs(v - Math.round(v)) < 1e-9;
    var text = whole ? String(Math.round(v)) : v.toFixed(1);
    var parts = text.split('.');
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    return parts.join('.');
  }
  function fmtShare(v) {
    if (v === null || v === undefined || !isFinite(v)) { return '–'; }
    return (v >= 0 ? '+' : '') + (100 * v).toFixed(1) + '%';
  }
  var STATUS = {
    'in': '带内 in band', 'out': '超出 out of band', 'oversize': '超大 oversize (exception)',
    'no band': '无 no band'
  };

  // one figure of a grid's card: its name, and its value as shown and as a number
  function figure(line, name, label, text, value) {
    var item = add(line, el('span', {'class': 'gm-f gm-c-' + name}));
    add(item, el('span', {'class': 'gm-k'}, label + ' '));
    var v = add(item, el('b', {'class': 'gm-v'}, text));
    if (value !== undefined && value !== null && isFinite(value)) {
      v.setAttribute('data-value', String(value));
    }
    return v;
  }

  function card(g) {
    var f = figuresAt(g);
    var box = el('div', {'class': 'gm-grid', 'data-grid-id': key(f.grid_id),
      'data-status': f.status});
    if (g === state.selected) { box.classList.add('gm-selected'); }
    var top = add(box, el('div', {'class': 'gm-line gm-c-code'}));
    var swatch = add(top, el('span', {'class': 'gm-swatch'}));
    swatch.style.background = grids[g].colour;
    add(top, el('b', {}, String(f.code).slice(-3)));
    add(top, el('small', {}, ' ' + f.code + ' · grid ' + f.grid_id +
      (f.kind !== 'community' ? ' · ' + f.kind : '') + ' · ' + f.n_units + ' units'));
    var lockButton = add(top, el('button', {type: 'button', 'class': 'gm-lock'},
      f.locked ? '解锁 unlock' : '锁定 lock'));
    lockButton.addEventListener('click', function (e) {
      e.stopPropagation();
      lockAt(g, !locked[g]);
    });
    var one = add(box, el('div', {'class': 'gm-line'}));
    figure(one, 'households', '户数 households', fmtNumber(f.households), f.households);
    // balanced by households, the weight is the households: shown once
    if (DATA.by !== 'households') {
      figure(one, 'weight', '均衡 ' + DATA.by, fmtNumber(f.weight), f.weight);
    }
    figure(one, 'mean', '社区均值 mean', fmtNumber(f.mean), f.mean);
    var two = add(box, el('div', {'class': 'gm-line'}));
    figure(two, 'dev', '偏差 deviation', fmtShare(f.deviation), f.deviation);
    figure(two, 'devt', '对目标 vs target', fmtShare(f.deviation_target), f.deviation_target);
    var three = add(box, el('div', {'class': 'gm-line'}));
    figure(three, 'band', '容差 band ±' + (100 * f.tolerance).toFixed(0) + '%',
      STATUS[f.status]).classList.add('gm-status-' + f.status.replace(' ', '-'));
    figure(three, 'piece', '连片 one piece', f.n_units === 0 ? '空 empty' :
      f.one_piece ? '是 yes' : '否 no, ' + f.pieces + ' pieces')
      .classList.toggle('gm-bad', !f.one_piece);
    box.addEventListener('click', function () { selectAt(g); });
    box.addEventListener('dblclick', function () { showAt(g); });
    return box;
  }

  function refresh() {
    var shown = [];
    if (state.selected >= 0) { shown.push(state.selected); }
    touched.forEach(function (g) { if (shown.indexOf(g) < 0) { shown.push(g); } });
    var rows = document.createDocumentFragment();
    shown.forEach(function (g) { rows.appendChild(card(g)); });
    while (tbody.firstChild) { tbody.removeChild(tbody.firstChild); }
    tbody.appendChild(rows);
    undoButton.disabled = !done.length;
    redoButton.disabled = !undone.length;
    Object.keys(modeButtons).forEach(function (m) {
      modeButtons[m].classList.toggle('gm-on', m === state.mode);
      modeButtons[m].setAttribute('aria-checked', String(m === state.mode));
    });
    gridSelect.value = state.selected >= 0 ? String(state.selected) : '';
  }

  // ------------------------------------------------------------------ moving units
  function touch(g) { if (touched.indexOf(g) < 0) { touched.push(g); } }

  function setAssign(u, g) {
    var from = assign[u];
    if (from === g) { return; }
    changedUnits[from] += original[u] === from ? 1 : -1;
    changedUnits[g] += original[u] === g ? -1 : 1;
    members[from].delete(u);
    members[g].add(u);
    assign[u] = g;
    resum(from);
    resum(g);
    restyleUnit(u);
    restyleLabel(from);
    restyleLabel(g);
    touch(from);
    touch(g);
  }

  function refusal(u, to) {
    var from = assign[u];
    var a = grids[from], b = grids[to];
    if (locked[from]) {
      return '网格 grid ' + a.code + ' is locked: its units stay; unlock it in the panel to ' +
        'move them';
    }
    if (locked[to]) {
      return '网格 grid ' + b.code + ' is locked: it takes no unit; unlock it in the panel ' +
        'first';
    }
    if (a.kind !== 'community' || b.kind !== 'community') {
      var which = a.kind !== 'community' ? a : b;
      return 'grid ' + which.code + ' is a ' + which.kind + ' grid, carved along its street ' +
        'or site: it gives and takes no unit by hand (delineate again to change it)';
    }
    if (key(a.community_id) !== key(b.community_id)) {
      return 'grid ' + a.code + ' is of community ' + a.community_id + ' and grid ' + b.code +
        ' of community ' + b.community_id + ': grids do not cross community boundaries';
    }
    return '';
  }

  // why a move needs the planner's yes: a grid left empty, with no building, or
  // in more pieces (what gridmap apply refuses, or takes only with --allow-pieces)
  function warnings(u, to) {
    var from = assign[u];
    var out = [];
    if (members[from].size === 1) {
      out.push('网格 grid ' + grids[from].code + ' would be empty (gridmap apply refuses an ' +
        'empty grid)');
    } else {
      if (gridBuildings[from] > 0 && gridBuildings[from] === unitBuildings[u]) {
        out.push('网格 grid ' + grids[from].code + ' would have no building left (gridmap ' +
          'apply refuses a grid with none)');
      }
      var after = countPieces(from, u, -1);
      if (after > Math.max(1, pieces(from))) {
        out.push('网格 grid ' + grids[from].code + ' would be in ' + after + ' pieces');
      }
    }
    var joined = countPieces(to, -1, u);
    if (joined > Math.max(1, pieces(to))) {
      out.push('网格 grid ' + grids[to].code + ' would be in ' + joined + ' pieces');
    }
    return out;
  }

  function moveUnit(u, event) {
    var start = event && event.timeStamp !== undefined ? event.timeStamp : performance.now();
    var to = state.selected;
    if (to < 0) { say('先选取网格 pick a grid first: click a unit in pick mode, or choose ' +
      'one in the list', 'gm-warn'); return false; }
    var from = assign[u];
    if (from === to) { return false; }
    var why = refusal(u, to);
    if (why) { say(why, 'gm-warn'); return false; }
    var warn = warnings(u, to);
    if (warn.length) {
      // the dialog swallows the mouse-up: a stroke ends here, whatever the answer
      endStroke();
      var yes = window.confirm(warn.join('\n') + '\n\nMove unit ' +
        features[u].properties.unit_id + ' anyway? (gridmap apply accepts a grid in ' +
        'pieces only with --allow-pieces)');
      if (!yes) { say('not moved: ' + warn.join('; '), 'gm-warn'); return false; }
    }
    setAssign(u, to);
    var step = {u: u, from: from, to: to};
    if (state.stroke) { state.stroke.push(step); } else { done.push([step]); undone = []; }
    say('unit ' + features[u].properties.unit_id + ': ' + grids[from].code + ' → ' +
      grids[to].code + (warn.length ? ' (' + warn.join('; ') + ')' : ''),
      warn.length ? 'gm-warn' : 'gm-info');
    refresh();
    api.lastMove = {unit_id: features[u].properties.unit_id, start: start,
      end: performance.now()};
    return true;
  }

  function beginStroke() { state.brushing = true; state.stroke = []; }
  function endStroke() {
    if (state.stroke && state.stroke.length) { done.push(state.stroke); undone = []; }
    state.brushing = false;
    state.stroke = null;
    refresh();
  }

  function replay(action, back) {
    var steps = back ? action.slice().reverse() : action;
    var blocked = steps.filter(function (s) { return locked[s.from] || locked[s.to]; });
    if (blocked.length) {
      var g = locked[blocked[0].from] ? blocked[0].from : blocked[0].to;
      say('网格 grid ' + grids[g].code + ' is locked: unlock it to ' + (back ? 'undo' : 'redo') +
        ' this move', 'gm-warn');
      return false;
    }
    steps.forEach(function (s) { setAssign(s.u, back ? s.from : s.to); });
    return true;
  }

  function undo() {
    if (state.brushing) { endStroke(); }
    if (!done.length) { say('nothing to undo', 'gm-info'); return false; }
    var action = done[done.length - 1];
    if (!replay(action, true)) { return false; }
    undone.push(done.pop());
    say('undone: ' + action.length + ' unit(s) back', 'gm-info');
    refresh();
    return true;
  }

  function redo() {
    if (!undone.length) { say('nothing to redo', 'gm-info'); return false; }
    var action = undone[undone.length - 1];
    if (!replay(action, false)) { return false; }
    done.push(undone.pop());
    say('redone: ' + action.length + ' unit(s)', 'gm-info');
    refresh();
    return true;
  }

  function selectAt(g) {
    var before = state.selected;
    state.selected = g;
    [before, g].forEach(function (x) {
      if (x < 0) { return; }
      members[x].forEach(function (u) { restyleUnit(u); });
      restyleLabel(x);
    });
    if (state.mode === 'pick') { state.mode = 'move'; }
    setDragging();
    say('网格 grid ' + grids[g].code + ' picked: click units to move them into it',
      'gm-info');
    refresh();
  }

  // the map fitted to the grid's units (picked from the list, it may be off screen)
  function showAt(g) {
    var bounds = L.latLngBounds([]);
    members[g].forEach(function (u) {
      if (unitLayers[u]) { bounds.extend(unitLayers[u].getBounds()); }
    });
    if (bounds.isValid()) { map.fitBounds(bounds, {maxZoom: 18, padding: [40, 40]}); }
  }

  function lockAt(g, on) {
    locked[g] = on ? 1 : 0;
    touch(g);
    restyleLabel(g);
    say('网格 grid ' + grids[g].code + (on ? ' locked' : ' unlocked'), 'gm-info');
    refresh();
  }

  function setMode(m) {
    if (state.brushing) { endStroke(); }
    state.mode = m;
    setDragging();
    refresh();
  }

  // the map pans by dragging, except while brushing (the drag is the brush)
  function setDragging() {
    var brush = state.mode === 'brush' || state.shift;
    if (brush) { map.dragging.disable(); } else { map.dragging.enable(); }
    document.getElementById('gm-map').classList.toggle('gm-brush', brush);
  }

  // ------------------------------------------------------------------ events
  unitsLayer.on('click', function (e) {
    var u = e.layer.gmUnit;
    var oe = e.originalEvent || {};
    if (state.mode === 'pick' || oe.altKey) { selectAt(assign[u]); return; }
    if (state.mode === 'brush' || oe.shiftKey) { return; }  // the mouse-down moved it
    moveUnit(u, oe);
  });
  unitsLayer.on('mousedown', function (e) {
    var oe = e.originalEvent || {};
    if (oe.button !== 0 || state.mode === 'pick' || oe.altKey) { return; }
    if (state.mode !== 'brush' && !oe.shiftKey) { return; }
    L.DomEvent.preventDefault(oe);
    beginStroke();
    moveUnit(e.layer.gmUnit, oe);
  });
  unitsLayer.on('mouseover', function (e) {
    if (state.brushing) { moveUnit(e.layer.gmUnit, e.originalEvent); }
  });
  document.addEventListener('mouseup', function () { if (state.brushing) { endStroke(); } });

  function typing(e) {
    var t = e.target && e.target.tagName;
    return t === 'INPUT' || t === 'TEXTAREA' || t === 'SELECT';
  }
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Shift' && !state.shift) { state.shift = true; setDragging(); }
    if (typing(e) || !(e.ctrlKey || e.metaKey)) { return; }
    var k = e.key.toLowerCase();
    if (k === 'z' && !e.shiftKey) { e.preventDefault(); undo(); }
    if (k === 'y' || (k === 'z' && e.shiftKey)) { e.preventDefault(); redo(); }
  });
  document.addEventListener('keyup', function (e) {
    if (e.key === 'Shift') { state.shift = false; setDragging(); }
  });
  window.addEventListener('blur', function () {
    state.shift = false;
    setDragging();
    if (state.brushing) { endStroke(); }
  });
  window.addEventListener('beforeunload', function (e) {
    if (JSON.stringify(edits()) === saved) { return undefined; }
    e.preventDefault();
    e.returnValue = '';  // moves not saved: the browser asks before leaving
    return '';
  });

  // ------------------------------------------------------------------ search
  var searching = {text: null, hits: [], next: 0};
  function search(text) {
    var q = String(text || '').trim();
    if (!q) { return null; }
    if (q !== searching.text) {
      var hits = DATA.buildings.filter(function (b) { return key(b.id) === q; });
      if (!hits.length) {
        var low = q.toLowerCase();
        hits = DATA.buildings.filter(function (b) {
          return b.address && b.address.toLowerCase().indexOf(low) >= 0;
        });
      }
      searching = {text: q, hits: hits, next: 0};
    }
    if (!searching.hits.length) {
      say('没有找到 no building with id or address "' + q + '"', 'gm-warn');
      return null;
    }
    var b = searching.hits[searching.next % searching.hits.length];
    var i = searching.next % searching.hits.length;
    searching.next += 1;
    var u = b.unit_id === null ? undefined : unitPos.get(key(b.unit_id));
    marks.clearLayers();
    if (u !== undefined) {
      var layer = unitLayers[u];
      map.fitBounds(layer.getBounds(), {maxZoom: 18, padding: [40, 40]});
      L.geoJSON(features[u], {pane: 'gm-marks', interactive: false, style: function () {
        return {color: '#e7298a', weight: 4, fill: false, opacity: 1};
      }}).addTo(marks);
    } else if (b.point) {
      map.setView(b.point, 18);
    }
    if (b.point) {
      L.circleMarker(b.point, {pane: 'gm-marks', interactive: false, radius: 6,
        color: '#e7298a', weight: 2, fillColor: '#ffffff', fillOpacity: 1}).addTo(marks);
    }
    var g = u !== undefined ? grids[assign[u]] : null;
    say('楼栋 building ' + b.id + (b.address ? ' (' + b.address + ')' : '') +
      (u !== undefined ? ': unit ' + b.unit_id + ', grid ' + g.code : ': in no unit') +
      (searching.hits.length > 1 ? ' — ' + (i + 1) + ' of ' + searching.hits.length +
        ' matches, find again for the next' : ''), 'gm-info');
    return {id: b.id, unit_id: b.unit_id, grid_id: g ? g.grid_id : null};
  }

  // ------------------------------------------------------------------ saving
  function compareIds(a, b) {
    if (typeof a === 'number' && typeof b === 'number') { return a - b; }
    var x = String(a), y = String(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  function edits() {
    var moves = [];
    for (var u = 0; u < nUnits; u++) {
      if (assign[u] !== original[u]) {
        moves.push({unit_id: features[u].properties.unit_id,
          from: grids[original[u]].grid_id, to: grids[assign[u]].grid_id});
      }
    }
    moves.sort(function (a, b) { return compareIds(a.unit_id, b.unit_id); });
    var locks = [];
    grids.forEach(function (g, i) { if (locked[i]) { locks.push(g.grid_id); } });
    return {plan: DATA.plan, by: DATA.by, moves: moves, locks: locks, note: note.value};
  }

  function save() {
    var data = edits();
    var blob = new Blob([JSON.stringify(data, null, 2) + '\n'], {type: 'application/json'});
    var url = URL.createObjectURL(blob);
    var a = el('a', {href: url, download: 'edits.json'});
    a.style.display = 'none';
    document.body.appendChild(a);
    a.click();
    setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 5000);
    saved = JSON.stringify(data);
    say('已保存 saved edits.json: ' + data.moves.length + ' unit(s) moved, ' +
      data.locks.length + ' grid(s) locked; apply with gridmap apply --plan ... --edits ' +
      'edits.json --out DIR', 'gm-info');
    return data;
  }

  // ------------------------------------------------------------------ the API
  function gridAt(gridId) {
    var g = gridPos.get(key(gridId));
    if (g === undefined) {
      throw new Error('no grid ' + JSON.stringify(gridId) + ' in plan ' + DATA.plan +
        ': grid ids are those of the plan\'s grids layer');
    }
    return g;
  }
  function unitAt(unitId) {
    var u = unitPos.get(key(unitId));
    if (u === undefined) {
      throw new Error('no unit ' + JSON.stringify(unitId) + ' in plan ' + DATA.plan +
        ': unit ids are those of the plan\'s units layer');
    }
    return u;
  }

  var api = {
    ready: false,
    lastMove: null,
    select: function (gridId) { selectAt(gridAt(gridId)); },
    show: function (gridId) { showAt(gridAt(gridId)); },
    move: function (unitId) { return moveUnit(unitAt(unitId)); },
    figures: function (gridId) { return figuresAt(gridAt(gridId)); },
    edits: edits,
    save: save,
    undo: undo,
    redo: redo,
    lock: function (gridId, on) { lockAt(gridAt(gridId), on === undefined ? true : !!on); },
    unlock: function (gridId) { lockAt(gridAt(gridId), false); },
    search: search,
    setMode: setMode,
    gridOf: function (unitId) { return grids[assign[unitAt(unitId)]].grid_id; },
    unitPoint: function (unitId) {
      var at = features[unitAt(unitId)].properties.point;
      if (!at) { throw new Error('unit ' + JSON.stringify(unitId) + ' has no geometry'); }
      var p = map.latLngToContainerPoint(at);
      return [p.x, p.y];
    },
    map: map
  };
  window.gridmapEditor = api;

  var bounds = unitsLayer.getBounds();
  if (bounds.isValid()) { map.fitBounds(bounds, {padding: [12, 12]}); } else { map.setView([0, 0], 2); }
  followZoom();
  for (var g1 = 0; g1 < nGrids; g1++) { restyleLabel(g1); }
  setDragging();
  saved = JSON.stringify(edits());
  say('选取网格 pick a grid: click one of its units, or choose it in the list', 'gm-info');
  refresh();
  api.ready = true;
  performance.mark('gridmap-ready');
}());
