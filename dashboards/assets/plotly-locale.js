/* sitetwin: plotly.js in the page's language (<html lang>, set by the server per request).
   Dash loads plotly.js lazily and then sets window.Plotly; plotly registers the locales queued in
   window.PlotlyLocales when it starts, and the setter below makes the page's language the default of
   every graph as soon as plotly is there (dates on axes, the mode bar's tooltips). */
(function () {
    "use strict";
    var lang = (document.documentElement.getAttribute("lang") || "en");
    if (lang !== "zh-CN") { return; }
    var locale = {
        moduleType: "locale",
        name: "zh-CN",
        dictionary: {
            "Autoscale": "自动缩放", "Box Select": "矩形框选", "Lasso Select": "套索选择",
            "Compare data on hover": "悬停时比较数据", "Show closest data on hover": "悬停时显示最近的数据",
            "Toggle show closest data on hover": "切换悬停时显示最近的数据",
            "Double-click to zoom back out": "双击恢复缩放", "Download plot as a png": "下载图表为 PNG 格式",
            "Download plot": "下载图表", "Edit in Chart Studio": "在 Chart Studio 中编辑",
            "Orbital rotation": "轨道旋转", "Turntable rotation": "转盘旋转", "Pan": "平移", "Zoom": "缩放",
            "Zoom in": "放大", "Zoom out": "缩小", "Reset axes": "重置坐标轴", "Reset view": "重置视图",
            "Reset camera to default": "重置相机为默认视角", "Reset camera to last save": "重置相机为上次保存的视角",
            "Reset": "重置", "Toggle Spike Lines": "切换辅助线", "Produced with Plotly.js": "由 Plotly.js 生成",
            "Snapshot succeeded": "快照已生成", "Taking snapshot - this may take a few seconds": "正在生成快照，可能需要几秒钟",
            "Sorry, there was a problem downloading your snapshot!": "抱歉，下载快照时出错！",
            "Click to enter Colorscale title": "点击输入色标标题", "Click to enter X axis title": "点击输入 X 轴标题",
            "Click to enter Y axis title": "点击输入 Y 轴标题", "Click to enter Plot title": "点击输入图表标题",
            "trace": "数据系列", "max": "最大值", "min": "最小值", "mean": "平均值", "median": "中位数",
            "q1": "下四分位数", "q3": "上四分位数", "kde": "核密度估计", "new text": "新文本"
        },
        format: {
            days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
            shortDays: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
            months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
            shortMonths: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
            date: "%Y-%m-%d",
            year: "%Y年",
            month: "%Y年%-m月",
            dayMonth: "%-m月%-d日",
            dayMonthYear: "%Y年%-m月%-d日"
        }
    };
    function adopt(plotly) {
        try {
            plotly.register(locale);
            plotly.setPlotConfig({locale: lang});
        } catch (e) { /* an older plotly: graphs stay in English */ }
    }
    if (window.Plotly) { adopt(window.Plotly); return; }
    window.PlotlyLocales = (window.PlotlyLocales || []).concat([locale]);
    var held;
    try {
        Object.defineProperty(window, "Plotly", {
            configurable: true,
            get: function () { return held; },
            set: function (value) {
                Object.defineProperty(window, "Plotly", {value: value, writable: true, configurable: true});
                held = value;
                adopt(value);
            }
        });
    } catch (e) {
        var waited = 0;
        var poll = setInterval(function () {
            waited += 100;
            if (window.Plotly) { adopt(window.Plotly); clearInterval(poll); } else if (waited > 60000) { clearInterval(poll); }
        }, 100);
    }
}());
