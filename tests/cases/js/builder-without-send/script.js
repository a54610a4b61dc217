ChatlayerResponseBuilder().addMessage("lost").addSessionVariable("x", 1).setNextDialogState("nowhere");
return "done";
