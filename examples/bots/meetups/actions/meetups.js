// Looks up meetups for a month with the example backend, keeps them in the
// session and shows them as a carousel. Chatlayer's code-editor API.
const { month, city, token, baseUrl } = args;
const res = await fetch(`${baseUrl}/meetups?month=${encodeURIComponent(month)}`, {
  headers: { Authorization: "Bearer " + token },
});
if (!res.ok) throw new Error("meetup lookup failed: " + res.status);
const { records = [] } = await res.json();
const found = _.sortBy(city ? records.filter((r) => r.city === city) : records, "date");
const builder = ChatlayerResponseBuilder();
builder.addSessionVariable("meetups", { count: found.length, titles: _.map(found, "title") });
if (found.length) {
  builder.addCarousel(
    found.map((m) => ({
      title: m.title,
      subTitle: `${m.city}, ${m.date}`,
      imageUrl: "https://meetups.example.com/logo.png",
      buttons: [{ type: "web_url", title: "Details", url: m.url }],
    })),
  );
}
builder.send();
