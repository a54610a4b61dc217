console.log("plain", { a: 1 }, [2]);
console.warn("careful");
console.error(new Error("boom"));
return null;
