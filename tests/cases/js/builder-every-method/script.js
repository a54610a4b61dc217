const b = ChatlayerResponseBuilder();
b.addSessionVariable("order", { id: 7, items: ["a"] })
 .setSessionVariable("user.tier", "gold")
 .addMessage("Hello")
 .addQuickReplies({ title: "Pick one", quickReplies: [{ type: "postback", title: "Yes", payload: { nextDialogstateId: "b-yes", params: [{ key: "answer", value: "yes" }] } }] })
 .addButtonGroup({ title: "Links", buttons: [{ type: "web_url", title: "Site", url: "https://example.com" }, { type: "phone_number", title: "Call", payload: "+3212345678" }] })
 .addCarousel([{ title: "Card", subTitle: "Sub", imageUrl: "https://example.com/i.png", buttons: [] }])
 .addMediaMessage({ type: "image", url: "https://example.com/i.png" })
 .addHtml("<b>hi</b>", { withBalloon: false })
 .addIframe("https://example.com/frame", { height: 300 })
 .setNextDialogState("first")
 .send();
b.addMessage("Second batch").setNextDialogState("last-wins").send();
