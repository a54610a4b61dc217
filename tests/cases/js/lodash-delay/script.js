const value = await new Promise((resolve) => _.delay(resolve, 30, "later"));
return value;
