public enum NearestTestSupport {}
