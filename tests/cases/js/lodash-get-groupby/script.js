const people = [{ name: "Ann", team: "a" }, { name: "Bob", team: "b" }, { name: "Cy", team: "a" }];
const byTeam = _.groupBy(people, "team");
return { city: _.get(args, "user.address.city", "none"), missing: _.get(args, "user.zip", "none"), a: _.map(byTeam.a, "name"), version: _.VERSION };
