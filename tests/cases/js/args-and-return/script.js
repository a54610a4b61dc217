const { month, token } = args;
return { month, tokenLength: token.length, nested: args.deep.list[1] };
