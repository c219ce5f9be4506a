// The twin page's glue: window.sitetwinViewer.show(containerId, config, state) is called by the page's
// clientside callback whenever a control changes; it fetches what changed (geometry once per site,
// colours per mode and day, points per survey, the sensors while their layer is on) from the workbench's
// /viewer/ routes and draws.
// A click writes the element's global id into the page's Dash store (the element card follows).
// The panorama page shows the same model plain (config.plain: one colour), with its current camera
// (state.camera: {position, direction, text} in the site's frame, or null) as a marker that follows.

import { parseBuffers, parseColours, parseGeometry } from './format.js';
import { Viewer } from './viewer.js';

const viewers = {};

function webgl2() {
  try {
    const c = document.createElement('canvas');
    return !!c.getContext('webgl2');
  } catch (e) {
    return false;
  }
}

function format(template, fields) {
  return (template || '').replace(/\{(\w+)\}/g, (m, k) => (k in fields ? fields[k] : m));
}

function num(n) {
  return Number(n).toLocaleString('en-US');
}

function hexRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

function setProps(id, props) {
  const dc = window.dash_clientside;
  if (dc && dc.set_props) dc.set_props(id, props);      // stores have no DOM element: no check for one
}

async function fetchOk(url, what) {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status}`);
  return res;
}

function cameraFromHash() {
  const m = /(?:^#|&)camera=([-0-9.,]+)/.exec(window.location.hash || '');
  if (!m) return null;
  const v = m[1].split(',').map(Number);
  return v.length === 6 && v.every(Number.isFinite) ? v : null;
}

function cameraToHash(values) {
  const url = new URL(window.location.href);
  url.hash = `camera=${values.join(',')}`;
  window.history.replaceState(window.history.state, '', url.href);
}

class Session {
  constructor(container, config) {
    this.container = container;
    this.config = config;
    this.canvasBox = document.createElement('div');
    this.canvasBox.className = 'sitetwin-viewer-box';
    this.canvasBox.style.position = 'relative';
    this.canvasBox.style.width = '100%';
    this.canvasBox.style.height = config.height || '70vh';
    this.legend = document.createElement('div');
    this.legend.className = 'legend sitetwin-viewer-legend';
    this.legend.id = `${container.id}-legend`;
    container.appendChild(this.legend);
    container.appendChild(this.canvasBox);
    this.stats = { start: performance.now() };
    this.viewer = new Viewer(this.canvasBox, {
      onPick: (index, gid, ms) => this.picked(index, gid, ms),
      onCamera: (values) => config.bookmark !== false && cameraToHash(values),
    });
    this.viewer.stats.session = this.stats;
    const cam = config.bookmark !== false ? cameraFromHash() : null;
    if (cam) this.viewer.cameraBookmark && (this.wantCamera = cam);
    this.state = {};
    this.geometry = null;          // promise of the parsed geometry of this.site
    this.coloursKey = null;
    this.pointsKey = null;
    this.sensorsOn = false;
    this.sensors = null;           // the last sensors.json shown
  }

  status(text) {
    setProps(this.config.statusId || 'twin-view-status', { children: text });
  }

  picked(index, gid, ms) {
    this.stats.lastPick = { index, gid, ms };
    if (!gid) return;
    setProps(this.config.elementStore || 'twin-element', { data: gid });
    setProps('shell-state', { data: { element: gid } });
  }

  url(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== '') q.set(k, v);
    const s = q.toString();
    return `${this.config.prefix}${encodeURIComponent(this.state.site)}/${path}${s ? `?${s}` : ''}`;
  }

  async loadGeometry() {
    const t0 = performance.now();
    this.status(format(this.config.text.loading, {}));
    const res = await fetchOk(this.url('geometry.bin'), 'geometry.bin');
    const buffer = await res.arrayBuffer();
    const t1 = performance.now();
    const parsed = parseGeometry(buffer);
    this.viewer.setGeometry(parsed);
    if (this.wantCamera) { this.viewer.setCamera(this.wantCamera); this.wantCamera = null; }
    const t2 = performance.now();
    Object.assign(this.stats, { geometryBytes: buffer.byteLength, fetchMs: t1 - t0, parseMs: t2 - t1,
                                elements: parsed.header.elements, triangles: parsed.header.triangles,
                                vertices: parsed.header.vertices });
    return parsed;
  }

  async update(state) {
    const prev = this.state;
    this.state = state;
    if (state.site !== prev.site || !this.geometry) {
      this.geometry = this.loadGeometry();
      this.coloursKey = null;
      this.colours = null;
      this.colourCache = new Map();
      this.pointsKey = null;
      this.sensorsOn = false;
      this.sensors = null;
      this.plain = false;
    }
    let parsed;
    try {
      parsed = await this.geometry;
    } catch (err) {
      this.status(format(this.config.text.error, { error: err.message }));
      this.stats.error = err.message;
      throw err;
    }
    if (this.state !== state) return;           // a later update took over
    const v = this.viewer;
    v.setStoreys(state.storeys);
    v.setClipping(state.section);
    const index = state.element ? parsed.header.element_ids.indexOf(state.element) : -1;
    v.select(index);
    this.syncSensors(parsed);
    if ('camera' in state) this.syncCamera(state.camera);
    if (this.config.plain && !this.plain) {
      this.plain = true;
      v.setPlain(hexRgb(this.config.plain));
      const drawn = await v.nextFrame();
      this.stats.firstPaint = drawn;
      this.stats.recolours = (this.stats.recolours || 0) + 1;
      this.status(format(this.config.text.status, { n: num(parsed.header.elements),
                                                    triangles: num(v.stats.trianglesDrawn) }));
      this.container.dataset.painted = String(this.stats.recolours);
      setTimeout(() => v.buildPicking(), 0);
    }
    const tasks = [];
    if (state.day) {
      const key = `${state.mode}|${state.day}`;
      if (key !== this.coloursKey) {
        this.coloursKey = key;
        tasks.push(this.recolour(state, parsed, key));
      }
    }
    await Promise.all(tasks);
    this.syncPoints();
  }

  /** Scan points of the survey the colours read, when the layer is on (points.bin needs the survey). */
  syncPoints() {
    const survey = this.state.points && this.colours ? this.colours.survey : null;
    if (survey === this.pointsKey) return;
    this.pointsKey = survey;
    this.loadPoints(survey);
  }

  /** The sensor devices as markers and their warned hosts lit, while the sensors layer is on (fetched
   * again each time it is turned on: warnings come and go). */
  async syncSensors(parsed) {
    const on = !!this.state.sensors;
    if (on === this.sensorsOn) return;
    this.sensorsOn = on;
    if (!on) {
      this.sensors = null;
      this.viewer.setOverlay('sensors', null);
      this.viewer.setLit(null);
      this.stats.sensors = { devices: 0, lit: 0 };
      if (this.colours) this.drawLegend(this.colours.legend);
      return;
    }
    try {
      const res = await fetchOk(this.url('sensors.json'), 'sensors.json');
      const json = await res.json();
      if (!this.sensorsOn || json.key !== parsed.header.key) return;      // turned off meanwhile, or another model
      this.sensors = json;
      this.viewer.setOverlay('sensors', json.devices.map((d) => ({
        position: d.position, colour: d.colour, scale: d.warned ? 1.5 : 1, text: d.text })));
      this.viewer.setLit(json.lit, hexRgb(json.lit_colour));
      this.stats.sensors = { devices: json.devices.length, lit: json.lit.length };
      if (this.colours) this.drawLegend(this.colours.legend);
    } catch (err) {
      this.sensorsOn = false;                  // the model alone; tried again on the next change
      this.stats.sensorsError = err.message;
    }
  }

  /** The panorama's camera as a marker with an arrow along the view (null: none, e.g. not posed). */
  syncCamera(camera) {
    const key = camera ? JSON.stringify(camera) : null;
    if (key === this.cameraKey) return;
    this.cameraKey = key;
    this.viewer.setOverlay('camera', camera ? [{ position: camera.position, direction: camera.direction,
                                                 colour: this.config.cameraColour || '#e11d48', scale: 2.5,
                                                 text: camera.text || '' }] : null);
    this.stats.camera = camera || null;
    this.stats.cameraMoves = (this.stats.cameraMoves || 0) + 1;
  }

  /** Once the model shows: the picking hierarchy, and the day's other colourings fetched ahead. */
  async afterFirstPaint(state) {
    this.viewer.buildPicking();
    for (const mode of this.config.modes || []) {
      if (mode !== state.mode && state.day) await this.colourJson(mode, state.day).catch(() => null);
    }
  }

  colourJson(mode, day) {
    const key = `${mode}|${day}`;
    this.colourCache = this.colourCache || new Map();
    if (!this.colourCache.has(key)) {
      const p = fetchOk(this.url('colours.json', { mode, day }), 'colours.json').then((res) => res.json());
      p.catch(() => this.colourCache.delete(key));
      this.colourCache.set(key, p);
      while (this.colourCache.size > 32) this.colourCache.delete(this.colourCache.keys().next().value);
    }
    return this.colourCache.get(key);
  }

  async recolour(state, parsed, key) {
    const t0 = performance.now();
    const json = await this.colourJson(state.mode, state.day);
    if (this.coloursKey !== key) return;
    const t1 = performance.now();
    const colours = parseColours(json, parsed.header.elements);
    this.colours = colours;
    this.viewer.setColours(colours);
    this.drawLegend(colours.legend);
    this.syncPoints();
    const drawn = await this.viewer.nextFrame();
    const first = this.stats.firstPaint === undefined;
    const record = { mode: state.mode, day: state.day, ms: drawn - t0, fetchMs: t1 - t0, at: drawn,
                     renderMs: this.viewer.stats.lastRenderMs };
    this.stats.recolours = (this.stats.recolours || 0) + 1;
    this.stats.lastRecolour = record;
    if (first) {
      this.stats.firstPaint = drawn;                  // ms since the page's navigation started
      setTimeout(() => this.afterFirstPaint(state, key), 0);
    }
    const s = this.viewer.stats;
    this.status(format(this.config.text.status, { n: num(parsed.header.elements),
                                                  triangles: num(s.trianglesDrawn),
                                                  ghosts: num(s.ghosts) })
                + (colours.note ? ` ${colours.note}` : ''));
    this.container.dataset.painted = String(this.stats.recolours);
  }

  async loadPoints(survey) {
    if (!survey) { this.viewer.setPoints(null); return; }
    try {
      const res = await fetchOk(this.url('points.bin', { survey }), 'points.bin');
      const buffer = await res.arrayBuffer();
      if (this.pointsKey !== survey) return;
      const parsed = parseBuffers(buffer, 'points.bin');
      this.viewer.setPoints(parsed);
      Object.assign(this.stats, { pointsBytes: buffer.byteLength, points: parsed.header.points });
    } catch (err) {
      this.viewer.setPoints(null);          // the model alone
      this.stats.pointsError = err.message;
    }
  }

  drawLegend(modeItems) {
    const el = this.legend;
    const items = this.sensors && this.sensors.legend ? [...modeItems, this.sensors.legend] : modeItems;
    el.textContent = '';
    for (const item of items) {
      const span = document.createElement('span');
      span.className = 'legend-item';
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = item.colour;
      if (item.ghost) sw.style.opacity = '0.4';          // drawn see-through, as the model shows it
      span.appendChild(sw);
      span.appendChild(document.createTextNode(`${item.label} (${num(item.count)})`));
      el.appendChild(span);
    }
  }
}

function show(containerId, config, state) {
  const container = document.getElementById(containerId);
  if (!container) return Promise.resolve(null);
  let session = viewers[containerId];
  if (session && session.container !== container) {      // the page was rebuilt: start again
    session.viewer.dispose();
    session = null;
  }
  if (!session) {
    session = new Session(container, config);
    viewers[containerId] = session;
  }
  return session.update(state);
}

window.sitetwinViewer = {
  show,
  webgl2,
  session: (id) => viewers[id] || null,
  stats: (id) => {
    const s = viewers[id];
    return s ? { ...s.stats, viewer: { ...s.viewer.stats, session: undefined } } : null;
  },
};
