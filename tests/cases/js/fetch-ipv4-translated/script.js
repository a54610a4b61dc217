await fetch(`http://[::ffff:0:127.0.0.1]:${args.port}/json`);
