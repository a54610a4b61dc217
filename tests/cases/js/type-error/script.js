const o = null;
return o.field;
