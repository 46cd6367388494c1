// Charts for reports and wallboards: callcenter.chart(element, option) draws an Apache
// ECharts chart (load /static/vendor/echarts/echarts.min.js before this file) in the
// page's language, on canvas, with tooltips drawn on the canvas too: ECharts' HTML
// tooltips carry style attributes, which our Content-Security-Policy refuses. The
// element gets its size from CSS (class "chart"); the chart follows the window's size.
"use strict";
(function () {
  const charts = [];

  function chart(element, option) {
    const locale = document.documentElement.lang.startsWith("zh") ? "ZH" : "EN";
    const drawn = window.echarts.init(element, null, {locale: locale, renderer: "canvas"});
    const tooltip = Object.assign({}, option.tooltip || {}, {renderMode: "richText"});
    drawn.setOption(Object.assign({}, option, {tooltip: tooltip}));
    charts.push(drawn);
    return drawn;
  }

  window.addEventListener("resize", function () {
    for (const drawn of charts) drawn.resize();
  });
  window.callcenter = Object.assign(window.callcenter || {}, {chart: chart});
})();
