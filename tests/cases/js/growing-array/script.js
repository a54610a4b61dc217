const a = [];
while (true) a.push(new Array(10000).fill(1));
