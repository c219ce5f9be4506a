// One site's models in one indexed BufferGeometry; per-element colour and state in a small RGBA texture.
//
// Each vertex carries its element's index (an integer attribute). The vertex shader looks the element up
// in the colour texture (RGB; alpha 255 solid, 1..254 a ghost of that opacity, 0 hidden) and moves the
// vertices of an element another pass draws out of the clip volume, so every pass costs vertex work only
// for what it does not draw. A recolour, a storey filter or a selection uploads E*4 bytes (or one uniform),
// never the geometry. Elements lit by a sensor's warning take their colour over the mode's. Markers (sensor
// devices, a panorama's camera) are drawn over the model, unlit, so that one inside a wall is still seen.
// Picking casts a ray through a bounding volume hierarchy of the triangles
// (three-mesh-bvh, built once after the first paint, without reordering the geometry); until it is
// built, the pick pass renders element ids into one pixel.

import {
  BufferAttribute,
  Color,
  ConeGeometry,
  CylinderGeometry,
  Group,
  MeshBasicMaterial,
  OctahedronGeometry,
  BufferGeometry,
  DataTexture,
  DoubleSide,
  GLSL3,
  IntType,
  Mesh,
  NearestFilter,
  Plane,
  Points,
  PointsMaterial,
  PerspectiveCamera,
  Raycaster,
  RGBAFormat,
  Scene,
  ShaderMaterial,
  Sphere,
  UnsignedByteType,
  Vector2,
  Vector3,
  WebGLRenderer,
  WebGLRenderTarget,
} from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { MeshBVH } from 'three-mesh-bvh';

const TEX_WIDTH = 2048;
const SELECTED = [1.0, 0.82, 0.0];     // the selection's highlight (the plotly twin's selected trace)
const PASS = { solid: 0, ghost: 1, pick: 2 };

const VERTEX = /* glsl */ `
uniform highp sampler2D colours;
uniform int texWidth;
uniform int selected;
uniform int pass;
uniform int pickGhosts;
in uint element;
flat out vec4 vColour;
flat out uint vElement;
out vec3 vNormal;
#include <clipping_planes_pars_vertex>
void main() {
  int e = int(element);
  vec4 c = texelFetch(colours, ivec2(e % texWidth, e / texWidth), 0);
  bool isSelected = e == selected;
  bool solid = c.a > 0.999 || isSelected;
  bool ghost = !solid && c.a > 0.001;
  bool keep = pass == 0 ? solid : (pass == 1 ? ghost : (solid || (pickGhosts == 1 && ghost)));
  if (isSelected) c = vec4(${SELECTED.map((v) => v.toFixed(3)).join(', ')}, 1.0);
  vColour = c;
  vElement = element;
  vNormal = normalMatrix * normal;
  vec4 mvPosition = modelViewMatrix * vec4(position, 1.0);
  gl_Position = keep ? projectionMatrix * mvPosition : vec4(2.0, 2.0, 2.0, 1.0);
  #include <clipping_planes_vertex>
}
`;

const FRAGMENT = /* glsl */ `
uniform int pass;
flat in vec4 vColour;
flat in uint vElement;
in vec3 vNormal;
layout(location = 0) out highp vec4 fragColour;
#include <clipping_planes_pars_fragment>
void main() {
  #include <clipping_planes_fragment>
  if (pass == 2) {
    uint id = vElement + 1u;
    fragColour = vec4(float(id & 255u), float((id >> 8) & 255u), float((id >> 16) & 255u),
                        float((id >> 24) & 255u)) / 255.0;
    return;
  }
  float len = length(vNormal);
  vec3 n = len > 1e-4 ? vNormal / len : vec3(0.0, 0.0, 1.0);
  float light = 0.42 + 0.48 * abs(n.z) + 0.10 * max(n.y, 0.0);
  fragColour = vec4(vColour.rgb * light, pass == 1 ? vColour.a : 1.0);
}
`;

function sphereOf(lo, hi, origin) {
  const a = new Vector3(lo[0] - origin[0], lo[1] - origin[1], lo[2] - origin[2]);
  const b = new Vector3(hi[0] - origin[0], hi[1] - origin[1], hi[2] - origin[2]);
  return new Sphere(a.clone().add(b).multiplyScalar(0.5), Math.max(a.distanceTo(b) / 2, 1e-3));
}

function material(texture, pass) {
  const m = new ShaderMaterial({
    glslVersion: GLSL3,
    vertexShader: VERTEX,
    fragmentShader: FRAGMENT,
    uniforms: {
      colours: { value: texture },
      texWidth: { value: TEX_WIDTH },
      selected: { value: -1 },
      pass: { value: pass },
      pickGhosts: { value: 0 },
    },
    side: DoubleSide,
    clipping: true,
    transparent: pass === PASS.ghost,
    depthWrite: pass !== PASS.ghost,
  });
  return m;
}

export class Viewer {
  /** A viewer drawing into ``container`` (a div); ``onPick(index, globalId, ms)`` on a click. */
  constructor(container, { onPick, onCamera } = {}) {
    this.container = container;
    this.onPick = onPick;
    this.onCamera = onCamera;
    this.stats = { frames: 0, recolours: 0 };
    const canvas = document.createElement('canvas');
    canvas.className = 'sitetwin-viewer-canvas';
    canvas.style.display = 'block';
    canvas.style.width = '100%';
    canvas.style.height = '100%';
    container.appendChild(canvas);
    this.canvas = canvas;
    // throws where there is no WebGL 2 context: the caller falls back
    this.renderer = new WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true,
                                        powerPreference: 'high-performance' });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(0xf4f6f8, 1);
    this.renderer.localClippingEnabled = true;
    this.renderer.info.autoReset = false;
    this.camera = new PerspectiveCamera(45, 1, 0.1, 10000);
    this.camera.up.set(0, 0, 1);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.addEventListener('change', () => this.requestRender());
    this.controls.addEventListener('end', () => this.onCamera && this.onCamera(this.cameraBookmark()));
    this.solidScene = new Scene();
    this.ghostScene = new Scene();
    this.overlayScene = new Scene();
    this.overlays = {};              // name -> {group, items}
    this.lit = null;                 // {elements: [index], rgb: [r, g, b]} or null
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'sitetwin-viewer-tooltip';
    Object.assign(this.tooltip.style, { position: 'absolute', pointerEvents: 'none', display: 'none',
                                        background: 'rgba(255,255,255,0.92)', border: '1px solid #999',
                                        padding: '2px 6px', font: '12px sans-serif', whiteSpace: 'nowrap' });
    container.appendChild(this.tooltip);
    this._bindHover(canvas);
    this.clipping = [];
    this.selected = -1;
    this.pending = false;
    this._bindPicking(canvas);
    this._resize = () => this.resize();
    this.resizeObserver = new ResizeObserver(this._resize);
    this.resizeObserver.observe(container);
    this.resize();
  }

  resize() {
    const w = Math.max(1, this.container.clientWidth);
    const h = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
    this.requestRender();
  }

  /** Take a parsed geometry.bin (``format.parseGeometry``): one BufferGeometry, two meshes sharing it. */
  setGeometry({ header, arrays }) {
    this.dispose(false);
    const E = header.elements;
    this.header = header;
    this.elements = E;
    const g = new BufferGeometry();
    g.setAttribute('position', new BufferAttribute(arrays.positions, 3));
    if (arrays.normals) g.setAttribute('normal', new BufferAttribute(arrays.normals.subarray(0, arrays.positions.length), 3, true));
    else g.setAttribute('normal', new BufferAttribute(new Int8Array(arrays.positions.length), 3, true));
    const element = new BufferAttribute(arrays.element, 1);
    element.gpuType = IntType;
    g.setAttribute('element', element);
    g.setIndex(new BufferAttribute(arrays.indices, 1));
    const [lo, hi] = header.bbox || [[0, 0, 0], [1, 1, 1]];
    const origin = header.origin || [0, 0, 0];
    g.boundingSphere = sphereOf(lo, hi, origin);     // from the header's box: no pass over the positions
    this.geometry = g;
    const rows = Math.max(1, Math.ceil(E / TEX_WIDTH));
    this.texData = new Uint8Array(TEX_WIDTH * rows * 4);
    this.texture = new DataTexture(this.texData, TEX_WIDTH, rows, RGBAFormat, UnsignedByteType);
    this.texture.minFilter = this.texture.magFilter = NearestFilter;
    this.texture.generateMipmaps = false;
    this.texture.needsUpdate = true;
    this.materials = [material(this.texture, PASS.solid), material(this.texture, PASS.ghost),
                      material(this.texture, PASS.pick)];
    this.solid = new Mesh(g, this.materials[0]);
    this.ghost = new Mesh(g, this.materials[1]);
    this.pickMesh = new Mesh(g, this.materials[2]);
    for (const m of [this.solid, this.ghost, this.pickMesh]) {
      m.position.set(origin[0], origin[1], origin[2]);
      m.frustumCulled = false;
    }
    this.solidScene.add(this.solid);
    this.ghostScene.add(this.ghost);
    this.pickScene = new Scene();
    this.pickScene.add(this.pickMesh);
    this.world = { lo, hi };
    this.elementOf = arrays.element;
    this.bvh = null;
    this.elementStorey = this._storeysOf(header);
    this.storeyFilter = null;
    this.colours = null;
    this.ghostCount = 0;
    this.solidCount = -1;            // not known before the first colours: drawn
    this.setClipping(this.clipBox || null);
    this.materials.forEach((m) => { m.uniforms.selected.value = this.selected; });
    if (!this.cameraSet) this.home();
  }

  _storeysOf(header) {
    const s = header.storeys || [];
    if (s.length === header.elements) return s;
    return null;
  }

  home() {
    const { lo, hi } = this.world;
    const centre = new Vector3((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2);
    const radius = Math.max(0.5 * Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]), 1);
    const fov = (this.camera.fov * Math.PI) / 180;
    const d = (radius / Math.sin(fov / 2)) * 1.05 / Math.min(1, this.camera.aspect);
    const dir = new Vector3(0.62, -0.78, 0.55).normalize();
    this.camera.position.copy(centre).addScaledVector(dir, d);
    this.camera.near = Math.max(0.01, radius / 1000);
    this.camera.far = d + radius * 20;
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(centre);
    this.controls.update();
    this.requestRender();
  }

  cameraBookmark() {
    const p = this.camera.position;
    const t = this.controls.target;
    return [p.x, p.y, p.z, t.x, t.y, t.z].map((v) => Math.round(v * 100) / 100);
  }

  setCamera(values) {
    if (!values || values.length !== 6 || values.some((v) => !Number.isFinite(v))) return false;
    this.camera.position.set(values[0], values[1], values[2]);
    this.controls.target.set(values[3], values[4], values[5]);
    this.controls.update();
    this.cameraSet = true;
    this.requestRender();
    return true;
  }

  /** Colours of a colours.json (``format.parseColours``): only the E*4-byte texture changes. */
  setColours(colours) {
    this.colours = colours;
    this._fillTexture();
  }

  /** Storeys to show (names), or null for all. */
  setStoreys(names) {
    const filter = names && names.length ? new Set(names) : null;
    const same = (filter === null && this.storeyFilter === null)
      || (filter && this.storeyFilter && filter.size === this.storeyFilter.size
          && [...filter].every((n) => this.storeyFilter.has(n)));
    if (same) return;
    this.storeyFilter = filter;
    if (this.colours) this._fillTexture();
  }

  _fillTexture() {
    const { rgba, ghost } = this.colours;
    const out = this.texData;
    const E = this.elements;
    const storeys = this.elementStorey;
    const filter = storeys && this.storeyFilter;
    let ghosts = 0;
    let solids = 0;
    out.set(rgba.subarray(0, E * 4));
    for (let e = 0; e < E; e++) {
      let a = 255;
      if ((filter && !filter.has(storeys[e])) || rgba[e * 4 + 3] === 0) a = 0;    // filtered out, or in no bin
      else if (ghost[e]) {
        const given = rgba[e * 4 + 3];
        a = given > 0 && given < 255 ? Math.max(20, Math.min(given, 160)) : 56;
        ghosts++;
      }
      if (a === 255) solids++;
      out[e * 4 + 3] = a;
    }
    if (this.lit) {                         // a warned device's host: solid, in the warning colour
      const [r, g, b] = this.lit.rgb;
      for (const e of this.lit.elements) {
        if (e < 0 || e >= E || (filter && !filter.has(storeys[e]))) continue;
        const a = out[e * 4 + 3];
        if (a !== 255) { solids++; if (a > 0) ghosts--; }          // 1..254: it was a ghost
        out[e * 4] = r; out[e * 4 + 1] = g; out[e * 4 + 2] = b; out[e * 4 + 3] = 255;
      }
    }
    this.ghostCount = ghosts;
    this.solidCount = solids;
    this.texture.needsUpdate = true;
    this.requestRender();
  }

  /** Elements drawn solid in colour ``rgb`` ([r, g, b] bytes) over the mode's colours, or null for none. */
  setLit(elements, rgb) {
    this.lit = elements && elements.length ? { elements: Array.from(elements), rgb } : null;
    this.stats.lit = this.lit ? this.lit.elements.length : 0;
    if (this.colours) this._fillTexture();
  }

  /** The model's size (the radius of its box), for markers sized to it. */
  modelRadius() {
    if (!this.world) return 10;
    const { lo, hi } = this.world;
    return Math.max(0.5 * Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]), 1);
  }

  /** Markers drawn over the model under ``name`` (null or [] removes them): items {position: [x, y, z] (site
   * frame), colour: '#rrggbb', scale (1 = the model's radius / 80), text (shown on hover), direction:
   * optional [dx, dy, dz] drawn as an arrow from the position (a camera's view)}. */
  setOverlay(name, items) {
    const old = this.overlays[name];
    if (old) {
      this.overlayScene.remove(old.group);
      old.group.traverse((o) => { if (o.geometry) o.geometry.dispose(); if (o.material) o.material.dispose(); });
      delete this.overlays[name];
    }
    if (items && items.length) {
      const group = new Group();
      const unit = this.modelRadius() / 80;
      for (const item of items) {
        const colour = new Color(item.colour || '#ff00ff');
        const mat = new MeshBasicMaterial({ color: colour, depthTest: false, depthWrite: false, transparent: true });
        const size = unit * (item.scale || 1);
        const marker = new Mesh(new OctahedronGeometry(size), mat);
        marker.position.set(item.position[0], item.position[1], item.position[2]);
        marker.renderOrder = 10;
        group.add(marker);
        if (item.direction) {
          const d = new Vector3(item.direction[0], item.direction[1], item.direction[2]);
          if (d.lengthSq() > 0) {
            d.normalize();
            const length = size * 6;
            const shaft = new Mesh(new CylinderGeometry(size * 0.25, size * 0.25, length, 8), mat.clone());
            const head = new Mesh(new ConeGeometry(size * 0.7, size * 2, 12), mat.clone());
            const up = new Vector3(0, 1, 0);          // the cylinder's and cone's axis
            for (const [m, at] of [[shaft, length / 2], [head, length + size]]) {
              m.quaternion.setFromUnitVectors(up, d);
              m.position.copy(marker.position).addScaledVector(d, at);
              m.renderOrder = 10;
              group.add(m);
            }
          }
        }
      }
      this.overlayScene.add(group);
      this.overlays[name] = { group, items };
    }
    this.stats.overlays = Object.fromEntries(Object.entries(this.overlays).map(([k, v]) => [k, v.items.length]));
    this.requestRender();
  }

  /** Where a site-frame point falls on the canvas (CSS pixels), or null when behind the camera. */
  project(position) {
    const v = new Vector3(position[0], position[1], position[2]).project(this.camera);
    if (v.z > 1 || v.z < -1) return null;
    return { x: ((v.x + 1) / 2) * this.canvas.clientWidth, y: ((1 - v.y) / 2) * this.canvas.clientHeight };
  }

  /** The overlay item nearest canvas pixel (x, y) within ``radius`` CSS pixels: {name, index, item} or null. */
  overlayAt(x, y, radius = 10) {
    let best = null;
    for (const [name, { items }] of Object.entries(this.overlays)) {
      items.forEach((item, index) => {
        const p = this.project(item.position);
        if (!p) return;
        const d = Math.hypot(p.x - x, p.y - y);
        if (d <= radius && (!best || d < best.d)) best = { name, index, item, d };
      });
    }
    return best;
  }

  _bindHover(canvas) {
    canvas.addEventListener('pointermove', (ev) => {
      if (ev.buttons) { this.tooltip.style.display = 'none'; return; }
      const rect = canvas.getBoundingClientRect();
      const x = ev.clientX - rect.left;
      const y = ev.clientY - rect.top;
      const hit = this.overlayAt(x, y);
      if (hit && hit.item.text) {
        this.tooltip.textContent = hit.item.text;
        this.tooltip.style.left = `${x + 12}px`;
        this.tooltip.style.top = `${y + 12}px`;
        this.tooltip.style.display = 'block';
      } else {
        this.tooltip.style.display = 'none';
      }
    });
    canvas.addEventListener('pointerleave', () => { this.tooltip.style.display = 'none'; });
  }

  /** Every element in one colour ([r, g, b] bytes), solid: the model as a backdrop (the panorama page). */
  setPlain(rgb) {
    const E = this.elements || 0;
    const rgba = new Uint8Array(E * 4);
    for (let e = 0; e < E; e++) { rgba[e * 4] = rgb[0]; rgba[e * 4 + 1] = rgb[1]; rgba[e * 4 + 2] = rgb[2]; rgba[e * 4 + 3] = 255; }
    this.setColours({ rgba, ghost: new Uint8Array(E), legend: [] });
  }

  /** The section box {lo: [x, y, z], hi: [x, y, z]} in the site's frame, or null for none. */
  setClipping(box) {
    this.clipBox = box;
    const planes = box ? [
      new Plane(new Vector3(1, 0, 0), -box.lo[0]), new Plane(new Vector3(-1, 0, 0), box.hi[0]),
      new Plane(new Vector3(0, 1, 0), -box.lo[1]), new Plane(new Vector3(0, -1, 0), box.hi[1]),
      new Plane(new Vector3(0, 0, 1), -box.lo[2]), new Plane(new Vector3(0, 0, -1), box.hi[2]),
    ] : [];
    this.clipping = planes;
    for (const m of this.materials || []) { m.clippingPlanes = planes; m.needsUpdate = true; }
    if (this.pointsMaterial) { this.pointsMaterial.clippingPlanes = planes; this.pointsMaterial.needsUpdate = true; }
    this.requestRender();
  }

  select(index) {
    const i = Number.isInteger(index) ? index : -1;
    if (i === this.selected) return;
    this.selected = i;
    for (const m of this.materials || []) m.uniforms.selected.value = i;
    this.requestRender();
  }

  /** Scan points (a parsed points.bin), or null to remove them. */
  setPoints(parsed) {
    if (this.points) {
      this.solidScene.remove(this.points);
      this.points.geometry.dispose();
      this.points = null;
    }
    if (parsed) {
      const { header, arrays } = parsed;
      const g = new BufferGeometry();
      g.setAttribute('position', new BufferAttribute(arrays.positions, 3));
      if (arrays.rgba) g.setAttribute('color', new BufferAttribute(arrays.rgba, 4, true));
      const o = header.origin || [0, 0, 0];
      g.boundingSphere = header.bbox ? sphereOf(header.bbox[0], header.bbox[1], o) : new Sphere(new Vector3(), 1e6);
      this.pointsMaterial = this.pointsMaterial || new PointsMaterial({ size: 2, sizeAttenuation: false,
                                                                        vertexColors: true });
      this.pointsMaterial.clippingPlanes = this.clipping;
      this.points = new Points(g, this.pointsMaterial);
      this.points.position.set(o[0], o[1], o[2]);
      this.points.frustumCulled = false;
      this.solidScene.add(this.points);
    }
    this.requestRender();
  }

  requestRender() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  /** Draw now; the solid pass's triangle count is the model's triangles submitted (ghosts and hidden
   * elements are culled in the vertex shader), the ghost pass follows when there are ghosts. */
  render() {
    const t0 = performance.now();
    const r = this.renderer;
    r.info.reset();
    r.autoClear = false;
    r.clear();
    // a pass with nothing to draw is skipped (its vertex work is most of a frame in software WebGL)
    if (this.solid) this.solid.visible = this.solidCount !== 0 || this.selected >= 0;
    r.render(this.solidScene, this.camera);
    let drawn = r.info.render.triangles;        // every pass submits the whole model (points are not triangles)
    if (this.ghost && this.ghostCount > 0) {
      r.info.reset();
      r.render(this.ghostScene, this.camera);
      drawn = Math.max(drawn, r.info.render.triangles);
    }
    if (this.overlayScene.children.length) r.render(this.overlayScene, this.camera);
    this.stats.frames += 1;
    this.stats.trianglesDrawn = this.geometry ? drawn : 0;
    this.stats.modelTriangles = this.header ? this.header.triangles : 0;
    this.stats.ghosts = this.ghostCount;
    if (this.afterRender) {
      const done = this.afterRender;
      this.afterRender = null;
      this.finish();
      const t1 = performance.now();
      this.stats.lastRenderMs = t1 - t0;
      done(t1);
    }
  }

  /** Wait for the GPU (a one-pixel read), so that a timing includes the drawing itself. */
  finish() {
    const gl = this.renderer.getContext();
    const px = new Uint8Array(4);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
  }

  /** A promise of the time the next frame is drawn (and finished). */
  nextFrame() {
    return new Promise((resolve) => { this.afterRender = resolve; this.requestRender(); });
  }

  /** The triangles' bounding volume hierarchy for picking (once; the geometry is left as it is). */
  buildPicking() {
    if (this.bvh || !this.geometry) return;
    const t0 = performance.now();
    this.bvh = new MeshBVH(this.geometry, { indirect: true });
    this.stats.bvhMs = performance.now() - t0;
  }

  /** The element index under canvas pixel (x, y) (CSS pixels), or -1: the nearest drawn solid element the
   * ray meets inside the section box, else the nearest ghost. */
  pickAt(x, y) {
    if (!this.geometry) return -1;
    if (!this.bvh) return this.pickByRendering(x, y);
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    this.raycaster = this.raycaster || new Raycaster();
    this.raycaster.setFromCamera(new Vector2((x / w) * 2 - 1, -(y / h) * 2 + 1), this.camera);
    const ray = this.raycaster.ray.clone();
    const o = this.solid.position;
    ray.origin.sub(o);
    const hits = this.bvh.raycast(ray, DoubleSide);
    hits.sort((a, b) => a.distance - b.distance);
    const box = this.clipBox;
    let ghost = -1;
    for (const hit of hits) {
      const e = this.elementOf[hit.face.a];
      const alpha = e === this.selected ? 255 : this.texData[e * 4 + 3];
      if (alpha === 0) continue;                                   // hidden: filtered out, or in no bin
      if (box) {
        const p = [hit.point.x + o.x, hit.point.y + o.y, hit.point.z + o.z];
        if (p.some((v, i) => v < box.lo[i] || v > box.hi[i])) continue;      // cut away by the section box
      }
      if (alpha === 255) return e;
      if (ghost < 0) ghost = e;
    }
    return ghost;
  }

  /** The pick pass: element ids rendered into the one pixel under (x, y). */
  pickByRendering(x, y) {
    const r = this.renderer;
    const dpr = r.getPixelRatio();
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (!this.pickTarget) this.pickTarget = new WebGLRenderTarget(1, 1, { type: UnsignedByteType });
    const px = new Uint8Array(4);
    const read = (ghosts) => {
      this.materials[2].uniforms.pickGhosts.value = ghosts ? 1 : 0;
      this.camera.setViewOffset(w * dpr, h * dpr, Math.floor(x * dpr), Math.floor(y * dpr), 1, 1);
      r.setRenderTarget(this.pickTarget);
      r.setClearColor(0x000000, 0);
      r.clear();
      r.render(this.pickScene, this.camera);
      r.readRenderTargetPixels(this.pickTarget, 0, 0, 1, 1, px);
      r.setRenderTarget(null);
      r.setClearColor(0xf4f6f8, 1);
      this.camera.clearViewOffset();
      return (px[0] | (px[1] << 8) | (px[2] << 16) | (px[3] << 24)) >>> 0;
    };
    let id = read(false);
    if (!id) id = read(true);          // nothing built there: the ghost under the cursor
    return id ? id - 1 : -1;
  }

  _bindPicking(canvas) {
    let down = null;
    canvas.addEventListener('pointerdown', (ev) => { down = { x: ev.clientX, y: ev.clientY, t: performance.now() }; });
    canvas.addEventListener('pointerup', (ev) => {
      if (!down) return;
      const moved = Math.hypot(ev.clientX - down.x, ev.clientY - down.y);
      const long = performance.now() - down.t > 800;
      down = null;
      if (moved > 4 || long || ev.button !== 0) return;
      const rect = canvas.getBoundingClientRect();
      const t0 = performance.now();
      const index = this.pickAt(ev.clientX - rect.left, ev.clientY - rect.top);
      const ms = performance.now() - t0;
      this.stats.lastPickMs = ms;
      this.stats.lastPick = index;
      if (index >= 0) this.select(index);
      if (this.onPick) this.onPick(index, index >= 0 ? this.header.element_ids[index] : null, ms);
    });
  }

  dispose(all = true) {
    for (const m of [this.solid, this.ghost]) if (m) m.parent && m.parent.remove(m);
    if (this.geometry) this.geometry.dispose();
    for (const m of this.materials || []) m.dispose();
    if (this.texture) this.texture.dispose();
    this.geometry = null;
    this.materials = null;
    if (all) {
      this.setPoints(null);
      for (const name of Object.keys(this.overlays)) this.setOverlay(name, null);
      this.resizeObserver.disconnect();
      this.controls.dispose();
      this.renderer.dispose();
      this.canvas.remove();
    }
  }
}

