// Charts of the follow-up figures page, drawn with the vendored ECharts from the JSON in the page.
(function () {
  var source = document.getElementById("figures-data");
  if (!source || typeof echarts === "undefined") return;
  var data = JSON.parse(source.textContent);
  var months = document.getElementById("chart-months");
  if (months) {
    echarts.init(months).setOption({
      tooltip: { trigger: "axis" },
      legend: { data: [data.labels.discharged, data.labels.followed, data.labels.ratio] },
      xAxis: { type: "category", data: data.months },
      yAxis: [{ type: "value" }, { type: "value", max: 100, axisLabel: { formatter: "{value}%" } }],
      series: [
        { name: data.labels.discharged, type: "bar", data: data.discharged },
        { name: data.labels.followed, type: "bar", data: data.followed },
        { name: data.labels.ratio, type: "line", yAxisIndex: 1, data: data.ratio },
      ],
    });
  }
  var status = document.getElementById("chart-status");
  if (status) {
    echarts.init(status).setOption({
      tooltip: { trigger: "item" },
      series: [{ name: data.labels.status, type: "pie", radius: ["40%", "70%"], data: data.status }],
    });
  }
})();
