const steps = [];
try {
  steps.push("try");
  await fetch("http://169.254.169.254/latest/meta-data/");
  steps.push("not reached");
} catch (e) {
  steps.push(e instanceof TypeError ? "TypeError" : "other");
  steps.push(e.message.startsWith("fetch failed: egress denied") ? "denied" : e.message);
} finally {
  steps.push("finally");
}
return steps;
