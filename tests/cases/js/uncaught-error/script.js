const x = 1;

throw new Error("lookup failed: 500");
