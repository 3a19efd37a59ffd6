/* Calibration editor of a throw-detection camera: floor lines, window columns, ignore masks and the
   zone of interest marked on the camera's still frame, saved as Calibration JSON (docs/vision.md).
   The SVG's viewBox is the frame's size, so every coordinate here is a full-resolution image pixel. */
(function () {
  "use strict";
  var dataEl = document.getElementById("calib-data");
  if (!dataEl) { return; }
  var D = JSON.parse(dataEl.textContent);
  var M = D.messages;
  var svg = document.getElementById("overlay");
  var NS = "http://www.w3.org/2000/svg";
  var S = {bottom: null, top: null, lines: [], columns: [], ignore: [], zone: null, draft: []};
  var floorsInput = document.getElementById("floors");
  var sens = document.getElementById("sensitivity");
  var drag = null;  // {kind: "column", index} or {kind: "end", line: "bottom"|"top", end: 0|1}
  var dragged = false;

  function mode() { return document.querySelector("input[name=mode]:checked").value; }
  function floors() { var n = parseInt(floorsInput.value, 10); return n > 0 ? n : 1; }
  function round(v) { return Math.round(v * 10) / 10; }
  function lerp(a, b, f) { return a + (b - a) * f; }
  function ordered(line) { return line[0][0] <= line[1][0] ? line : [line[1], line[0]]; }
  function meanY(line) { return (line[0][1] + line[1][1]) / 2; }

  function interpolate(bottom, top, n) {
    var out = [];
    for (var i = 0; i <= n; i++) {
      var f = i / n;
      out.push([[lerp(bottom[0][0], top[0][0], f), lerp(bottom[0][1], top[0][1], f)],
                [lerp(bottom[1][0], top[1][0], f), lerp(bottom[1][1], top[1][1], f)]]);
    }
    return out;
  }

  /* The N+1 floor lines, ground line first: every marked line when there are two or more, else the
     ground and roof lines with the floor count between them. */
  function floorLines() {
    if (S.lines.length >= 2) {
      return S.lines.map(ordered).sort(function (a, b) { return meanY(b) - meanY(a); });
    }
    if (S.bottom && S.top) { return interpolate(ordered(S.bottom), ordered(S.top), floors()); }
    return [];
  }

  function load(cal) {
    if (!cal) { return; }
    var lines = cal.floor_lines || [];
    var n = lines.length - 1;
    if (n >= 1) {
      var even = interpolate(lines[0], lines[n], n);
      var worst = 0;
      for (var i = 0; i <= n; i++) {
        for (var j = 0; j < 2; j++) {
          worst = Math.max(worst, Math.abs(even[i][j][1] - lines[i][j][1]), Math.abs(even[i][j][0] - lines[i][j][0]));
        }
      }
      S.bottom = lines[0]; S.top = lines[n]; floorsInput.value = n;
      if (worst > 1.5) { S.lines = lines.slice(); }
    }
    S.columns = (cal.columns || []).slice();
    S.ignore = (cal.ignore || []).slice();
    S.zone = cal.zone || null;
  }

  function toImage(evt) {
    var pt = svg.createSVGPoint();
    pt.x = evt.clientX; pt.y = evt.clientY;
    var p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [round(Math.min(Math.max(p.x, 0), D.width)), round(Math.min(Math.max(p.y, 0), D.height))];
  }

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) { if (Object.prototype.hasOwnProperty.call(attrs, k)) { node.setAttribute(k, attrs[k]); } }
    (parent || svg).appendChild(node);
    return node;
  }
  function points(list) { return list.map(function (p) { return p[0] + "," + p[1]; }).join(" "); }

  function draw() {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    S.ignore.forEach(function (poly) { el("polygon", {"class": "ignore", points: points(poly)}); });
    if (S.zone) { el("polygon", {"class": "zone", points: points(S.zone)}); }
    var lines = floorLines();
    var every = lines.length > 31 ? 5 : 1;
    lines.forEach(function (ln, i) {
      var edge = i === 0 || i === lines.length - 1;
      el("line", {"class": "floor" + (edge ? " edge" : ""), x1: ln[0][0], y1: ln[0][1], x2: ln[1][0], y2: ln[1][1], "data-floor-line": i});
      if (i < lines.length - 1 && (i + 1) % every === 0) {
        var next = lines[i + 1];
        var size = Math.round(D.width / 70);  // about 14 px on screen, whatever the picture's size
        var label = el("text", {"class": "floor-label", x: ln[0][0] - 2.2 * size, y: (ln[0][1] + next[0][1]) / 2 + size / 3,
                                "font-size": size, "stroke-width": size / 5});
        label.textContent = String(i + 1);
      }
    });
    S.columns.forEach(function (x, i) {
      el("line", {"class": "column", x1: x, y1: 0, x2: x, y2: D.height});
      var hit = el("line", {"class": "column-hit", x1: x, y1: 0, x2: x, y2: D.height, "data-column": i});
      hit.addEventListener("pointerdown", function (evt) { startDrag(evt, {kind: "column", index: i}); });
    });
    ["bottom", "top"].forEach(function (name) {
      var line = S[name];
      if (!line) { return; }
      if (S.lines.length < 2) { el("line", {"class": "floor edge", x1: line[0][0], y1: line[0][1], x2: line[1][0], y2: line[1][1]}); }
      line.forEach(function (p, end) {
        var h = el("circle", {"class": "handle", cx: p[0], cy: p[1], r: Math.max(D.width / 200, 5)});
        h.addEventListener("pointerdown", function (evt) { startDrag(evt, {kind: "end", line: name, end: end}); });
      });
    });
    if (S.draft.length) {
      el("polyline", {"class": "draft", points: points(S.draft)});
      S.draft.forEach(function (p) { el("circle", {"class": "handle", cx: p[0], cy: p[1], r: Math.max(D.width / 300, 4)}); });
    }
    summary(lines);
  }

  function summary(lines) {
    var parts = [];
    if (lines.length) { parts.push((lines.length - 1) + " " + M.floors); } else { parts.push(M.need_lines); }
    if (S.columns.length > 1) { parts.push((S.columns.length - 1) + " " + M.columns_word); }
    document.getElementById("summary").textContent = parts.join(" · ");
  }

  function startDrag(evt, what) {
    evt.stopPropagation();
    evt.preventDefault();
    drag = what; dragged = true;  // a press on a handle or column never adds a point
    svg.setPointerCapture(evt.pointerId);
  }

  svg.addEventListener("pointermove", function (evt) {
    if (!drag) { return; }
    var p = toImage(evt);
    if (drag.kind === "column") { S.columns[drag.index] = p[0]; }
    else { S[drag.line][drag.end] = p; }
    draw();
  });

  svg.addEventListener("pointerup", function () {
    if (drag && drag.kind === "column") { S.columns.sort(function (a, b) { return a - b; }); }
    if (drag) { draw(); }
    drag = null;
  });

  svg.addEventListener("click", function (evt) {
    if (dragged) { dragged = false; return; }
    var p = toImage(evt);
    var m = mode();
    if (m === "columns") {
      S.columns.push(p[0]);
      S.columns.sort(function (a, b) { return a - b; });
    } else {
      S.draft.push(p);
      if ((m === "bottom" || m === "top") && S.draft.length === 2) { S[m] = S.draft; S.draft = []; }
      else if (m === "lines" && S.draft.length === 2) { S.lines.push(S.draft); S.draft = []; }
    }
    draw();
  });

  function closePolygon() {
    var m = mode();
    S.draft = S.draft.filter(function (p, i, all) {  // a double click leaves the same point twice
      return i === 0 || Math.abs(p[0] - all[i - 1][0]) > 1 || Math.abs(p[1] - all[i - 1][1]) > 1;
    });
    if (S.draft.length < 3 || (m !== "ignore" && m !== "zone")) { draw(); return; }
    if (m === "ignore") { S.ignore.push(S.draft); } else { S.zone = S.draft; }
    S.draft = [];
    draw();
  }

  function undo() {
    var m = mode();
    if (S.draft.length) { S.draft.pop(); }
    else if (m === "lines") { S.lines.pop(); }
    else if (m === "columns") { S.columns.pop(); }
    else if (m === "ignore") { S.ignore.pop(); }
    else if (m === "zone") { S.zone = null; }
    else { S[m] = null; }
    draw();
  }

  function clearMode() {
    var m = mode();
    S.draft = [];
    if (m === "lines") { S.lines = []; }
    else if (m === "columns") { S.columns = []; }
    else if (m === "ignore") { S.ignore = []; }
    else if (m === "zone") { S.zone = null; }
    else { S[m] = null; }
    draw();
  }

  function hint() { document.getElementById("hint").textContent = M[mode()] || ""; }

  function csrf() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRF-Token"]; } catch (e) { return ""; }
  }

  function calibration() {
    return {
      width: D.width, height: D.height,
      floor_lines: floorLines().map(function (ln) { return [[round(ln[0][0]), round(ln[0][1])], [round(ln[1][0]), round(ln[1][1])]]; }),
      columns: S.columns.slice(),
      ignore: S.ignore,
      zone: S.zone,
      sensitivity: parseFloat(sens.value)
    };
  }

  function say(text, good) {
    var box = document.getElementById("message");
    box.textContent = text;
    box.className = good ? "ok" : "bad";
  }

  function save() {
    fetch("/api/v1/vision/cameras/" + D.camera + "/calibration", {
      method: "PUT",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(calibration())
    }).then(function (r) {
      return r.json().then(function (body) { return {ok: r.ok, body: body}; });
    }).then(function (res) {
      if (res.ok) { say(M.saved, true); return; }
      var e = res.body.error || {};
      say(M.failed + "：" + (e.message || "") + (e.field ? " [" + e.field + "]" : ""), false);
    }).catch(function (err) { say(M.failed + "：" + err, false); });
  }

  document.querySelectorAll("input[name=mode]").forEach(function (r) {
    r.addEventListener("change", function () { S.draft = []; hint(); draw(); });
  });
  floorsInput.addEventListener("input", draw);
  sens.addEventListener("input", function () { document.getElementById("sensitivity-value").textContent = sens.value; });
  document.getElementById("close-polygon").addEventListener("click", closePolygon);
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("clear").addEventListener("click", clearMode);
  var saveButton = document.getElementById("save");
  if (saveButton) { saveButton.addEventListener("click", save); }
  svg.addEventListener("dblclick", function (evt) { evt.preventDefault(); closePolygon(); });

  load(D.calibration);
  hint();
  draw();
  window.linliCalibration = calibration;  // for tests and the curious: the JSON that would be saved
})();
