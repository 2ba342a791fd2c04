namespace CrmEngine.Core.Pipeline;

/// <summary>
/// Thrown by a handler's invoker when its owner cannot take calls right now (a plugin that is stopping
/// or was marked Malfunctioned between the dispatcher picking a delivery and invoking it). For an
/// asynchronous delivery this is not a failure: the delivery stays pending, no try is counted and no
/// fault is reported, so it is made once the owner is active again instead of being lost.
/// </summary>
public sealed class HandlerUnavailableException : Exception
{
    public HandlerUnavailableException(string message) : base(message) { }
    public HandlerUnavailableException() { }
    public HandlerUnavailableException(string message, Exception inner) : base(message, inner) { }
}
