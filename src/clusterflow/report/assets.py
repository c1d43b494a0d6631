"""The report's inline stylesheet and script: system fonts, no network, no innerHTML."""

STYLE = """
:root{--ink:#1f2328;--muted:#656d76;--line:#d8dee4;--bg:#fff;--panel:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header{padding:20px 32px;background:#24292f;color:#fff}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c9d1d9}
nav{position:sticky;top:0;z-index:5;background:var(--panel);border-bottom:1px solid var(--line);padding:8px 32px}
nav a{margin-right:16px;color:#0969da;text-decoration:none}
main{padding:0 32px 48px;max-width:1400px}
section{margin-top:28px}
h2{font-size:18px;border-bottom:1px solid var(--line);padding-bottom:6px}
h3{font-size:15px;margin:18px 0 6px}
.note{color:var(--muted)}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;vertical-align:top;text-align:left}
th{background:var(--panel)}
table.sortable th{cursor:pointer}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.current td{background:#fff8c5}
.scroll{overflow-x:auto;max-width:100%}
.insights td{min-width:150px}
.insights th.feature,.insights td.feature{position:sticky;left:0;background:#fff;min-width:140px;z-index:1}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:baseline}
.small{font-size:12px;color:var(--muted)}
.terms span{display:inline-block;margin:0 4px 2px 0;padding:0 4px;background:var(--panel);border-radius:3px}
.example{font-size:12px;color:#444;border-left:3px solid var(--line);padding-left:6px;margin:4px 0;white-space:pre-wrap;word-break:break-word}
.thumbs img{width:48px;height:48px;object-fit:cover;margin:1px;border:2px solid var(--line)}
.chart text,.box text{font-size:12px}
.lbl{fill:#333;font-size:11px}.val{fill:#555;font-size:11px}
svg.zoom{border:1px solid var(--line);cursor:grab;touch-action:none;max-width:100%;height:auto}
.grid{display:flex;flex-wrap:wrap;gap:18px}
.grid figure{margin:0}
figcaption{font-size:12px;color:var(--muted);max-width:220px}
#tip{position:fixed;z-index:10;pointer-events:none;background:#24292f;color:#fff;padding:4px 8px;border-radius:4px;font-size:12px;white-space:pre-line;max-width:420px}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 16px}
dt{color:var(--muted)}dd{margin:0}
"""

SCRIPT = """
(function(){
  var tip=document.getElementById('tip');
  document.addEventListener('mouseover',function(ev){
    var t=ev.target.closest?ev.target.closest('[data-tip]'):null;
    if(!t){tip.hidden=true;return;}
    tip.textContent=t.getAttribute('data-tip');tip.hidden=false;
  });
  document.addEventListener('mousemove',function(ev){
    tip.style.left=Math.min(ev.clientX+14,window.innerWidth-430)+'px';tip.style.top=(ev.clientY+14)+'px';
  });
  document.querySelectorAll('svg.zoom').forEach(function(svg){
    var b=svg.viewBox.baseVal,start=[b.x,b.y,b.width,b.height],v=start.slice(),drag=null;
    function set(){svg.setAttribute('viewBox',v.join(' '));}
    svg.addEventListener('wheel',function(ev){
      ev.preventDefault();
      var r=svg.getBoundingClientRect(),fx=(ev.clientX-r.left)/r.width,fy=(ev.clientY-r.top)/r.height;
      var s=ev.deltaY<0?0.8:1.25,w=v[2]*s,h=v[3]*s;
      v=[v[0]+(v[2]-w)*fx,v[1]+(v[3]-h)*fy,w,h];set();
    },{passive:false});
    svg.addEventListener('pointerdown',function(ev){drag=[ev.clientX,ev.clientY,v[0],v[1]];});
    svg.addEventListener('pointermove',function(ev){
      if(!drag)return;var r=svg.getBoundingClientRect();
      v[0]=drag[2]-(ev.clientX-drag[0])*v[2]/r.width;v[1]=drag[3]-(ev.clientY-drag[1])*v[3]/r.height;set();
    });
    window.addEventListener('pointerup',function(){drag=null;});
    svg.addEventListener('dblclick',function(){v=start.slice();set();});
  });
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th,i){
      var up=true;
      th.addEventListener('click',function(){
        var body=table.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){
          var x=a.cells[i].textContent,y=b.cells[i].textContent,nx=parseFloat(x),ny=parseFloat(y);
          var c=(isNaN(nx)||isNaN(ny))?x.localeCompare(y):nx-ny;return up?c:-c;
        });
        up=!up;rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
})();
"""
