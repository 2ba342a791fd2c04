using CrmEngine.Host.Commands;

return await CrmCommandLine.InvokeAsync(args);
