const res = await fetch(`${args.base}/status/404`);
if (!res.ok) {
  ChatlayerResponseBuilder().addMessage(`Not found (${res.status} ${res.statusText})`).send();
  return res.status;
}
return "unexpected";
